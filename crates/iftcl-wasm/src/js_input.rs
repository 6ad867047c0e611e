//! What JavaScript passes in: model files as bytes or URLs, options objects, sentence arrays;
//! and the errors thrown back, each naming the field or file.

use std::path::Path;

use iftcl::{IncomingWeights, ModelFiles, PreparedEncoder, RawModelFiles};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub(crate) fn js_err(context: &str, e: impl std::fmt::Display) -> JsValue {
    JsError::new(&format!("{context}: {e}")).into()
}

pub(crate) fn js_debug(context: &str, e: JsValue) -> JsValue {
    let text = e.as_string().or_else(|| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| format!("{e:?}"));
    JsError::new(&format!("{context}: {text}")).into()
}

/// The response of the global `fetch` (browsers and Node 18+) for `url`, checked to be a success.
async fn fetch_ok(url: &str) -> Result<JsValue, JsValue> {
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into())?.dyn_into().map_err(|_| js_err(url, "no fetch() in this environment: pass the bytes instead"))?;
    let promise: Promise = fetch.call1(&global, &url.into()).map_err(|e| js_debug(url, e))?.dyn_into()?;
    let response = JsFuture::from(promise).await.map_err(|e| js_debug(&format!("fetching {url}"), e))?;
    if !Reflect::get(&response, &"ok".into())?.as_bool().unwrap_or(false) {
        let status = Reflect::get(&response, &"status".into())?.as_f64().unwrap_or(0.0);
        return Err(js_err(&format!("fetching {url}"), format!("HTTP status {status}")));
    }
    Ok(response)
}

/// Fetches `url` whole.
pub(crate) async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsValue> {
    let response = fetch_ok(url).await?;
    let array_buffer: Function = Reflect::get(&response, &"arrayBuffer".into())?.dyn_into()?;
    let buffer = JsFuture::from(array_buffer.call0(&response)?.dyn_into::<Promise>()?).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A stream of `url`'s bytes that downloads at full speed whether or not it is read yet (a
/// response's own body stops the download while nobody reads it): the body piped into a
/// TransformStream that queues without limit. `None` where there is no TransformStream.
fn eager_stream(url: &str) -> Result<Option<JsValue>, JsValue> {
    let Ok(transform) = Reflect::get(&js_sys::global(), &"TransformStream".into())?.dyn_into::<Function>() else { return Ok(None) };
    let unlimited = Object::new();
    Reflect::set(&unlimited, &"highWaterMark".into(), &f64::INFINITY.into())?;
    let pipe = Reflect::construct(&transform, &Array::of3(&Object::new(), &Object::new(), &unlimited))?;
    let (readable, writable) = (Reflect::get(&pipe, &"readable".into())?, Reflect::get(&pipe, &"writable".into())?);
    let url = url.to_string();
    wasm_bindgen_futures::spawn_local(async move {
        let piped = async {
            let response = fetch_ok(&url).await?;
            let body = Reflect::get(&response, &"body".into())?;
            let pipe_to: Function = Reflect::get(&body, &"pipeTo".into())?.dyn_into()?;
            let options = Object::new();
            Reflect::set(&options, &"preventAbort".into(), &true.into())?;
            JsFuture::from(pipe_to.call2(&body, &writable, &options)?.dyn_into::<Promise>()?).await.map_err(|e| js_debug(&format!("fetching {url}"), e))
        };
        if let Err(e) = piped.await {
            // The reader sees this error.
            if let Ok(abort) = Reflect::get(&writable, &"abort".into()).and_then(|a| a.dyn_into::<Function>())
                && let Ok(done) = abort.call1(&writable, &e).and_then(|p| p.dyn_into::<Promise>())
            {
                let _ = JsFuture::from(done).await;
            }
        }
    });
    Ok(Some(readable))
}

/// A model file as JavaScript passed it: its bytes, or a promise of them (a URL being fetched,
/// or a promise the caller passed).
pub(crate) enum FileInput {
    Absent,
    Bytes(Vec<u8>),
    /// Handlers are attached as soon as it starts, so a failed download is never reported
    /// as an unhandled rejection while other files are awaited.
    Later(JsFuture, String),
    /// A ReadableStream of the bytes (the weights of a URL, or a stream the caller passed).
    Stream(JsValue, String),
}

/// The weights as they came: whole, or received through [`PreparedEncoder::incoming_weights`].
pub(crate) enum Weights {
    Bytes(Vec<u8>),
    Incoming(IncomingWeights),
}

/// Bytes (one copy, into the module's memory) of a Uint8Array or ArrayBuffer `v`.
fn bytes_of(v: &JsValue, key: &str) -> Result<Vec<u8>, JsValue> {
    // A Uint8Array is read where it is (`new Uint8Array(v)` would copy it first).
    if let Some(array) = v.dyn_ref::<Uint8Array>() {
        return Ok(array.to_vec());
    }
    if v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(v).to_vec());
    }
    Err(js_err(&format!("Encoder.load: `{key}`"), "must be a Uint8Array, an ArrayBuffer, a ReadableStream or a URL string (or a promise of bytes)"))
}

fn is_stream(v: &JsValue) -> bool {
    v.is_object() && Reflect::get(v, &"getReader".into()).is_ok_and(|f| f.is_function())
}

/// Reads the ReadableStream `stream` of file `key` into `incoming`, chunk by chunk.
async fn read_stream(stream: &JsValue, key: &str, incoming: &mut IncomingWeights) -> Result<(), JsValue> {
    let context = format!("Encoder.load: `{key}`");
    let get_reader: Function = Reflect::get(stream, &"getReader".into())?.dyn_into()?;
    let reader = get_reader.call0(stream).map_err(|e| js_debug(&context, e))?;
    let read: Function = Reflect::get(&reader, &"read".into())?.dyn_into()?;
    let mut scratch = Vec::new();
    loop {
        let next = read.call0(&reader).map_err(|e| js_debug(&context, e))?.dyn_into::<Promise>()?;
        let result = JsFuture::from(next).await.map_err(|e| js_debug(&context, e))?;
        if Reflect::get(&result, &"done".into())?.as_bool().unwrap_or(false) {
            return Ok(());
        }
        let chunk = Reflect::get(&result, &"value".into())?;
        let chunk = chunk.dyn_ref::<Uint8Array>().ok_or_else(|| js_err(&context, "the stream gave something other than a Uint8Array"))?;
        scratch.resize(chunk.length() as usize, 0);
        chunk.copy_to(&mut scratch);
        incoming.push(&scratch);
    }
}

/// Starts getting `files[key]`: a URL starts downloading now, bytes are taken as they are.
pub(crate) fn start_file(files: &JsValue, key: &str) -> Result<FileInput, JsValue> {
    let v = Reflect::get(files, &key.into())?;
    if v.is_undefined() || v.is_null() {
        return Ok(FileInput::Absent);
    }
    if let Some(url) = v.as_string() {
        if key == "weights"
            && let Some(stream) = eager_stream(&url)?
        {
            return Ok(FileInput::Stream(stream, key.to_string()));
        }
        let fetching = wasm_bindgen_futures::future_to_promise(async move { fetch_bytes(&url).await.map(|b| Uint8Array::from(b.as_slice()).into()) });
        return Ok(FileInput::Later(JsFuture::from(fetching), key.to_string()));
    }
    if let Some(promise) = v.dyn_ref::<Promise>() {
        return Ok(FileInput::Later(JsFuture::from(promise.clone()), key.to_string()));
    }
    if is_stream(&v) {
        return Ok(FileInput::Stream(v, key.to_string()));
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
            FileInput::Stream(_, key) => Err(js_err(&format!("Encoder.load: `{key}`"), "only the weights may be a ReadableStream")),
        }
    }

    /// The weights of `prepared`'s model: a stream is converted while it arrives.
    pub(crate) async fn weights(self, prepared: &PreparedEncoder) -> Result<Weights, JsValue> {
        match self {
            FileInput::Stream(stream, key) => {
                let mut incoming = prepared.incoming_weights();
                read_stream(&stream, &key, &mut incoming).await?;
                Ok(Weights::Incoming(incoming))
            }
            other => other.required("weights", "model.safetensors").await.map(Weights::Bytes),
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

