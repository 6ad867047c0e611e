//! What JavaScript passes in: model files as bytes or URLs, options objects, sentence arrays;
//! and the errors thrown back, each naming the field or file.

use std::path::Path;

use iftcl::{ModelFiles, RawModelFiles};
use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub(crate) fn js_err(context: &str, e: impl std::fmt::Display) -> JsValue {
    JsError::new(&format!("{context}: {e}")).into()
}

pub(crate) fn js_debug(context: &str, e: JsValue) -> JsValue {
    let text = e.as_string().or_else(|| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| format!("{e:?}"));
    JsError::new(&format!("{context}: {text}")).into()
}

/// Fetches `url` with the global `fetch` (browsers and Node 18+).
pub(crate) async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsValue> {
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into())?.dyn_into().map_err(|_| js_err(url, "no fetch() in this environment: pass the bytes instead"))?;
    let promise: Promise = fetch.call1(&global, &url.into()).map_err(|e| js_debug(url, e))?.dyn_into()?;
    let response = JsFuture::from(promise).await.map_err(|e| js_debug(&format!("fetching {url}"), e))?;
    if !Reflect::get(&response, &"ok".into())?.as_bool().unwrap_or(false) {
        let status = Reflect::get(&response, &"status".into())?.as_f64().unwrap_or(0.0);
        return Err(js_err(&format!("fetching {url}"), format!("HTTP status {status}")));
    }
    let array_buffer: Function = Reflect::get(&response, &"arrayBuffer".into())?.dyn_into()?;
    let buffer = JsFuture::from(array_buffer.call0(&response)?.dyn_into::<Promise>()?).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A model file as JavaScript passed it: its bytes, or a promise of them (a URL being fetched,
/// or a promise the caller passed).
pub(crate) enum FileInput {
    Absent,
    Bytes(Vec<u8>),
    /// Handlers are attached as soon as it starts, so a failed download is never reported
    /// as an unhandled rejection while other files are awaited.
    Later(JsFuture, String),
}

/// Bytes (one copy, into the module's memory) of a Uint8Array or ArrayBuffer `v`.
fn bytes_of(v: &JsValue, key: &str) -> Result<Vec<u8>, JsValue> {
    if v.is_instance_of::<Uint8Array>() || v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(v).to_vec());
    }
    Err(js_err(&format!("Encoder.load: `{key}`"), "must be a Uint8Array, an ArrayBuffer or a URL string (or a promise of bytes)"))
}

/// Starts getting `files[key]`: a URL starts downloading now, bytes are taken as they are.
pub(crate) fn start_file(files: &JsValue, key: &str) -> Result<FileInput, JsValue> {
    let v = Reflect::get(files, &key.into())?;
    if v.is_undefined() || v.is_null() {
        return Ok(FileInput::Absent);
    }
    if let Some(url) = v.as_string() {
        let fetching = wasm_bindgen_futures::future_to_promise(async move { fetch_bytes(&url).await.map(|b| Uint8Array::from(b.as_slice()).into()) });
        return Ok(FileInput::Later(JsFuture::from(fetching), key.to_string()));
    }
    if let Some(promise) = v.dyn_ref::<Promise>() {
        return Ok(FileInput::Later(JsFuture::from(promise.clone()), key.to_string()));
    }
    bytes_of(&v, key).map(FileInput::Bytes)
}

impl FileInput {
    /// The bytes, once they are there; `None` when the file was not given.
    pub(crate) async fn bytes(self) -> Result<Option<Vec<u8>>, JsValue> {
        match self {
            FileInput::Absent => Ok(None),
            FileInput::Bytes(b) => Ok(Some(b)),
            FileInput::Later(future, key) => {
                let v = future.await.map_err(|e| js_debug(&format!("Encoder.load: `{key}`"), e))?;
                bytes_of(&v, &key).map(Some)
            }
        }
    }

    /// [`Self::bytes`] of a file that must be given.
    pub(crate) async fn required(self, key: &str, file: &str) -> Result<Vec<u8>, JsValue> {
        self.bytes().await?.ok_or_else(|| js_err("Encoder.load", format!("`{key}` ({file}) is required: bytes or a URL")))
    }
}

pub(crate) fn option<T: JsCast>(options: &JsValue, key: &str) -> Result<Option<T>, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    let v = Reflect::get(options, &key.into())?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.dyn_into::<T>().map(Some).map_err(|_| js_err("options", format!("`{key}` has the wrong type")))
}

pub(crate) fn number(options: &JsValue, key: &str, default: f64) -> Result<f64, JsValue> {
    Ok(option::<js_sys::Number>(options, key)?.map_or(default, |n| n.value_of()))
}

/// The model files as the library takes them, from what JavaScript passed, and the weights
/// still coming: every download starts at once, and the small files are awaited first, so
/// the caller parses them while `model.safetensors` arrives.
pub(crate) async fn model_files(files: &JsValue) -> Result<(ModelFiles, FileInput), JsValue> {
    if !files.is_object() {
        return Err(js_err("Encoder.load", "expects { config, weights, tokenizer, pooling?, modules?, sentenceBertConfig?, sentenceTransformersConfig? }"));
    }
    let keys = ["config", "weights", "tokenizer", "modules", "pooling", "sentenceBertConfig", "sentenceTransformersConfig"];
    let mut started = keys.iter().map(|k| start_file(files, k)).collect::<Result<Vec<_>, _>>()?.into_iter();
    let mut next = || started.next().expect("one per key");
    let (config, weights, tokenizer) = (next(), next(), next());
    if matches!(weights, FileInput::Absent) {
        return Err(js_err("Encoder.load", "`weights` (model.safetensors) is required: bytes or a URL"));
    }
    let raw = RawModelFiles {
        config: config.required("config", "config.json").await?,
        weights: Vec::new(),
        tokenizer: tokenizer.required("tokenizer", "tokenizer.json").await?,
        modules: next().bytes().await?,
        pooling: next().bytes().await?,
        sentence_bert_config: next().bytes().await?,
        st_config: next().bytes().await?,
        // A modules.json that lists Dense or LayerNorm modules is refused, naming their files.
        module_files: Vec::new(),
        companions: Vec::new(),
    };
    let files = ModelFiles::from_raw(raw, Path::new("<browser>")).map_err(|e| js_err("Encoder.load", e))?;
    Ok((files, weights))
}

pub(crate) fn texts_of(texts: Array, what: &str) -> Result<Vec<String>, JsValue> {
    if texts.length() == 0 {
        return Err(js_err(what, "needs at least one sentence"));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| t.as_string().ok_or_else(|| js_err(what, format!("item {i} is not a string"))))
        .collect()
}

