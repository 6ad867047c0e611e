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

/// `files[key]` as bytes: a Uint8Array, an ArrayBuffer, or a URL to fetch. `None` when absent.
pub(crate) async fn file_bytes(files: &JsValue, key: &str) -> Result<Option<Vec<u8>>, JsValue> {
    let v = Reflect::get(files, &key.into())?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(url) = v.as_string() {
        return fetch_bytes(&url).await.map(Some);
    }
    if v.is_instance_of::<Uint8Array>() || v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Some(Uint8Array::new(&v).to_vec()));
    }
    Err(js_err(&format!("Encoder.load: `{key}`"), "must be a Uint8Array, an ArrayBuffer or a URL string"))
}

pub(crate) async fn required(files: &JsValue, key: &str, file: &str) -> Result<Vec<u8>, JsValue> {
    file_bytes(files, key).await?.ok_or_else(|| js_err("Encoder.load", format!("`{key}` ({file}) is required: bytes or a URL")))
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

/// The model files as the library takes them, from what JavaScript passed.
pub(crate) async fn model_files(files: &JsValue) -> Result<ModelFiles, JsValue> {
    if !files.is_object() {
        return Err(js_err("Encoder.load", "expects { config, weights, tokenizer, pooling?, modules?, sentenceBertConfig?, sentenceTransformersConfig? }"));
    }
    let raw = RawModelFiles {
        config: required(files, "config", "config.json").await?,
        weights: required(files, "weights", "model.safetensors").await?,
        tokenizer: required(files, "tokenizer", "tokenizer.json").await?,
        modules: file_bytes(files, "modules").await?,
        pooling: file_bytes(files, "pooling").await?,
        sentence_bert_config: file_bytes(files, "sentenceBertConfig").await?,
        st_config: file_bytes(files, "sentenceTransformersConfig").await?,
        // A modules.json that lists Dense or LayerNorm modules is refused, naming their files.
        module_files: Vec::new(),
        companions: Vec::new(),
    };
    ModelFiles::from_raw(raw, Path::new("<browser>")).map_err(|e| js_err("Encoder.load", e))
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

