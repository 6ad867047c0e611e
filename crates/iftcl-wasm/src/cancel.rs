//! Cancelling a running `fineTune`: the caller passes an `AbortSignal` (`options.signal`), and
//! between two steps the loop gives the JavaScript event loop a turn (so that an `abort()` from
//! a click handler or a worker's message can run) and then reads `signal.aborted`.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::js_input::js_err;

/// `options.signal`, when given: anything with an `aborted` property (an `AbortSignal`).
pub(crate) fn signal_of(options: &JsValue) -> Result<Option<JsValue>, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    let signal = Reflect::get(options, &"signal".into())?;
    if signal.is_undefined() || signal.is_null() {
        return Ok(None);
    }
    if !signal.is_object() || !Reflect::has(&signal, &"aborted".into())? {
        return Err(js_err("options", "`signal` must be an AbortSignal"));
    }
    Ok(Some(signal))
}

/// Whether the signal has been aborted.
pub(crate) fn aborted(signal: &JsValue) -> bool {
    Reflect::get(signal, &"aborted".into()).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

/// Resolves on the event loop's next turn (`setTimeout(0)`): messages and clicks queued while
/// the step ran are handled first.
pub(crate) async fn next_turn() -> Result<(), JsValue> {
    let global = js_sys::global();
    let set_timeout: Function = Reflect::get(&global, &"setTimeout".into())?.dyn_into().map_err(|_| js_err("fineTune", "no setTimeout() to yield with"))?;
    let promise = Promise::new(&mut |resolve, _reject| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from_f64(0.0));
    });
    JsFuture::from(promise).await.map(|_| ())
}

/// The rejection of a cancelled call: an `Error` named `AbortError`, as `fetch` rejects.
pub(crate) fn abort_error(message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("AbortError");
    e.into()
}
