//! The device `Encoder.load` runs on: WebGPU when the browser offers an adapter, else burn's
//! CPU backend compiled to wasm.
//!
//! A wgpu runtime can be initialised once per page, and only asynchronously in a browser
//! (a lazy, blocking initialisation panics on wasm): the first WebGPU load initialises it and
//! later loads reuse the device.
//!
//! The CPU-only module (built without the `webgpu` feature: no wgpu, no CubeCL) answers `auto`
//! with the CPU and refuses `webgpu` by saying which module has it.

#[cfg(feature = "webgpu")]
use std::cell::RefCell;

use iftcl::burn::tensor::Device;
use wasm_bindgen::JsValue;

/// The device picked, its name as `Encoder.device` shows it, and on WebGPU the largest
/// buffer the adapter's device takes (the smaller of its buffer and storage-binding limits).
#[derive(Clone)]
pub struct Picked {
    pub device: Device,
    pub name: String,
    pub buffer_limit: Option<u64>,
}

/// Whether this module was built with WebGPU (the full module) or for the CPU only.
pub const HAS_WEBGPU: bool = cfg!(feature = "webgpu");

#[cfg(feature = "webgpu")]
thread_local! {
    static WEBGPU: RefCell<Option<Picked>> = const { RefCell::new(None) };
}

/// Whether this JavaScript environment offers WebGPU at all (`navigator.gpu`): wgpu panics
/// when asked for a browser instance elsewhere (Node, or a non-dedicated worker).
#[cfg(feature = "webgpu")]
fn has_navigator_gpu() -> bool {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"navigator".into())
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| g.is_object())
}

#[cfg(feature = "webgpu")]
async fn webgpu() -> Result<Picked, String> {
    if let Some(ready) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok(ready);
    }
    if !has_navigator_gpu() {
        return Err("this JavaScript environment has no WebGPU (navigator.gpu is undefined)".into());
    }
    let (device, setup) = Device::wgpu_options().init_with_setup_async().await.map_err(|e| e.to_string())?;
    let info = setup.adapter.get_info();
    // Browsers often hide the adapter's name; say what they do tell.
    let what = [info.name.as_str(), info.driver.as_str(), info.driver_info.as_str()].into_iter().find(|s| !s.is_empty()).unwrap_or("browser adapter");
    let name = format!("webgpu: {what} ({:?})", info.device_type);
    let limits = setup.device.limits();
    let buffer_limit = Some(limits.max_buffer_size.min(u64::from(limits.max_storage_buffer_binding_size)));
    let picked = Picked { device, name, buffer_limit };
    WEBGPU.with(|w| *w.borrow_mut() = Some(picked.clone()));
    Ok(picked)
}

#[cfg(not(feature = "webgpu"))]
async fn webgpu() -> Result<Picked, String> {
    Err("this is iftcl's CPU-only module (iftcl_wasm_cpu.js), which has no WebGPU code; the full module (iftcl_wasm.js) has it".into())
}

fn log(message: &str) {
    web_log(&JsValue::from_str(message));
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn web_log(message: &JsValue);
}

/// `auto`: WebGPU if the browser offers it, else the CPU; `webgpu`: WebGPU or an error; `cpu`.
pub async fn pick(choice: &str) -> Result<Picked, JsValue> {
    let cpu = || Picked { device: Device::flex(), name: "cpu".into(), buffer_limit: None };
    match choice {
        "cpu" => Ok(cpu()),
        "webgpu" => webgpu().await.map_err(|e| super::js_err("Encoder.load: no WebGPU device", e)),
        "auto" if !HAS_WEBGPU => Ok(cpu()),
        "auto" => match webgpu().await {
            Ok(found) => Ok(found),
            Err(e) => {
                log(&format!("iftcl: WebGPU unavailable ({e}); using the CPU backend"));
                Ok(cpu())
            }
        },
        other => Err(super::js_err("Encoder.load", format!("options.device `{other}` is not auto, webgpu or cpu"))),
    }
}
