//! iftcl in the browser: a thin wasm-bindgen layer over the same library the `iftcl` binary
//! uses. From JavaScript:
//!
//! ```js
//! import init, { Encoder } from "./pkg/iftcl_wasm.js";
//! await init();
//! const enc = await Encoder.load({ config: "model/config.json", weights: "model/model.safetensors",
//!                                  tokenizer: "model/tokenizer.json" });
//! enc.device;                                   // "webgpu: <adapter>" or "cpu"
//! const [a, b] = await enc.embed(["A man plays a guitar.", "Someone plays music."]);
//! await enc.similarity("A man plays a guitar.", "Someone plays music.");
//! await enc.fineTune(sentences, { steps: 3, batchSize: 8, onProgress: (p) => console.log(p) });
//! const bytes = await enc.exportWeights();      // model.safetensors for the native iftcl
//!                                               // ({ dtype: "f16" }: half the bytes)
//! ```
//!
//! Every failure (bad bytes, wrong shapes, empty input, a step too large for the memory) is a JS exception with a message that
//! names the file or field; a Rust panic never aborts the module unseen (it is logged with its
//! message by `console_error_panic_hook` and surfaces as an exception).

use std::cell::RefCell;
use std::rc::Rc;

use iftcl::cosine;
use iftcl::train::fused::FusedLoss;
use iftcl::train::memory::human_bytes;
use iftcl::train::{Batches, Ended, FineTuner, Schedule, StepHooks, StepReport, TrainConfig, run_steps};
use iftcl::{Precision, PreparedEncoder, SentenceEncoder};
use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

mod cancel;
mod ctors;
mod device;
mod js_input;

use js_input::{Weights, js_debug, js_err, model_files, number, option, texts_of};

/// Runs the static constructors and installs the panic hook (once, when the module is
/// instantiated).
#[wasm_bindgen(start)]
pub fn start() {
    ctors::run_once();
    console_error_panic_hook::set_once();
}

fn rows_to_js(rows: Vec<Vec<f32>>) -> Array {
    rows.into_iter().map(|r| JsValue::from(Float32Array::from(r.as_slice()))).collect()
}

struct State {
    encoder: SentenceEncoder,
    device_name: String,
    /// WebGPU: the largest buffer the device takes; `None` on the CPU.
    buffer_limit: Option<u64>,
    tuner: Option<FineTuner>,
    /// A `fineTune` call is running (its tuner is out of `tuner` meanwhile).
    tuning: bool,
}

/// The most a wasm32 heap can hold (4 GiB).
const WASM_HEAP: u64 = 1 << 32;

/// Makes sure `bytes` more can be allocated on this page's wasm heap, by reserving them once
/// (the allocator reuses free space in the heap or grows it, and keeps what it grew for what
/// follows). Fails with a message that says what needs the memory and what to lower, instead
/// of the allocation aborting the module later.
fn reserve_heap(bytes: u64, what: &str, lower: &str) -> Result<(), JsValue> {
    let heap = (wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>().buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length()) as u64;
    let refuse = || {
        js_err(
            &format!("{what}: out of memory"),
            format!("it needs about {} more and the wasm heap (now {}) cannot grow past {}: {lower}", human_bytes(bytes), human_bytes(heap), human_bytes(WASM_HEAP)),
        )
    };
    // Free space inside the heap counts, so only a request past the whole heap is refused
    // without asking the allocator.
    if bytes >= WASM_HEAP {
        return Err(refuse());
    }
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(bytes as usize).map_err(|_| refuse())
}

/// Refuses a fine-tune step that cannot fit: on the CPU, the step's memory on the wasm heap;
/// on WebGPU, its largest tensor against the device's buffer limit (the device does not say
/// how much memory it has in all; a step past that fails with the browser's message).
fn check_step_memory(s: &State, settings: &TrainConfig, batch: usize) -> Result<(), JsValue> {
    let need = settings.step_memory(&s.encoder.config, batch);
    let lower = format!("lower batchSize (now {batch})");
    match s.buffer_limit {
        Some(limit) if need.largest_tensor > limit => Err(js_err(
            "fineTune: out of memory",
            format!("a step needs a {} buffer and this WebGPU device takes at most {} per buffer: {lower}", human_bytes(need.largest_tensor), human_bytes(limit)),
        )),
        Some(_) => Ok(()),
        None => {
            // The optimizer's state is allocated by the first step and kept.
            let extra = if s.tuner.as_ref().is_some_and(|t| t.steps_done() > 0) { need.activations } else { need.total() };
            reserve_heap(extra, "fineTune", &lower)
        }
    }
}

/// A sentence encoder (tokenizer + BERT + pooling) on WebGPU or the CPU.
#[wasm_bindgen]
pub struct Encoder {
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl Encoder {
    /// Loads a model from its files (`config` = config.json, `weights` = model.safetensors,
    /// `tokenizer` = tokenizer.json, optional `pooling` = 1_Pooling/config.json, `modules` =
    /// modules.json, `sentenceBertConfig` = sentence_bert_config.json), each a Uint8Array, an
    /// ArrayBuffer, a URL or a promise of bytes, and the weights also a ReadableStream;
    /// `model.safetensors` in f32, f16, bf16 or int8 (`iftcl convert`). `options.device`:
    /// "auto" (default: WebGPU when the browser offers an adapter, else the CPU), "webgpu" or
    /// "cpu".
    ///
    /// Every download starts at once; the tokenizer is parsed while the weights still arrive,
    /// the weights (from a URL or a stream) are converted as their bytes come in, and the model
    /// runs once on the tokenizer's special tokens before the promise resolves, so the first
    /// `embed` pays no first-use costs.
    #[wasm_bindgen(unchecked_return_type = "Promise<Encoder>")]
    pub fn load(files: JsValue, options: JsValue) -> Promise {
        future_to_promise(async move {
            let choice = option::<js_sys::JsString>(&options, "device")?.map(String::from).unwrap_or_else(|| "auto".into());
            let (files, weights) = model_files(&files).await?;
            let prepared = PreparedEncoder::new(files).map_err(|e| js_err("Encoder.load", e))?;
            let picked = device::pick(&choice).await?;
            let encoder = match weights.weights(&prepared).await? {
                Weights::Bytes(bytes) => prepared.load(&bytes, &picked.device),
                Weights::Incoming(incoming) => prepared.load_incoming(incoming, &picked.device),
            };
            let encoder = encoder.map_err(|e| js_err("Encoder.load", e))?;
            encoder.warm_up_async().await.map_err(|e| js_err("Encoder.load", e))?;
            let state = State { encoder, device_name: picked.name, buffer_limit: picked.buffer_limit, tuner: None, tuning: false };
            Ok(Encoder { state: Rc::new(RefCell::new(state)) }.into())
        })
    }

    /// The device in use: `"webgpu: <adapter>"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        self.state.borrow().device_name.clone()
    }

    /// What the dense layers compute in: `"int8"` for an int8 file on the CPU (wasm SIMD's
    /// integer dot products), else `"f32"` (f16, bf16 and f32 files; WebGPU; after a fine-tune,
    /// whose weights are f32).
    #[wasm_bindgen(getter)]
    pub fn compute(&self) -> String {
        self.state.borrow().encoder.compute().name().to_string()
    }

    /// Width of the sentence vectors.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.state.borrow().encoder.dim()
    }

    /// One vector per text, in order. `options.signal` (an AbortSignal) is read between
    /// batches of the library's batch size (64), after the event loop has had a turn: once it
    /// aborts, the call rejects with an `AbortError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array[]>")]
    pub fn embed(&self, texts: Array, options: JsValue) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let texts = texts_of(texts, "embed")?;
            let signal = cancel::signal_of(&options)?;
            let rows = embed_texts(&state, &texts, signal.as_ref()).await?;
            Ok(rows_to_js(rows).into())
        })
    }

    /// Cosine similarity of two texts.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn similarity(&self, a: String, b: String) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let rows = embed_texts(&state, &[a, b], None).await?;
            Ok(JsValue::from_f64(cosine(&rows[0], &rows[1])))
        })
    }

    /// The cosine-similarity matrix of `texts` (one Float32Array row per text).
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array[]>")]
    pub fn matrix(&self, texts: Array) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let texts = texts_of(texts, "matrix")?;
            let rows = embed_texts(&state, &texts, None).await?;
            let m: Vec<Vec<f32>> = rows.iter().map(|a| rows.iter().map(|b| cosine(a, b) as f32).collect()).collect();
            Ok(rows_to_js(m).into())
        })
    }

    /// Real IFTCL steps on `sentences` (identical and fraternal twins, Twins Loss, queue):
    /// `options` = { steps (default 10), batchSize (default 8, at most the sentences), lr
    /// (default 1e-5), seed (default 42), fusedLoss ("auto": the fused WGSL loss kernels on
    /// WebGPU, the plain tensor-op loss on the CPU; "on"; "off"), onProgress({ step, steps,
    /// loss, nce, twins }) (`twins` is null for a loss without the Twins term), signal (an
    /// AbortSignal: read between steps, after the event loop has had a turn) }.
    /// Resolves to the per-step losses; the encoder embeds with the tuned weights afterwards.
    /// All or nothing, as the library's `tune` and the Tauri plugin: a call that is cancelled
    /// (it rejects with an `AbortError` after the step that is running) or whose loss or weights
    /// stop being finite leaves the encoder with the weights it had before the call, and the
    /// next call starts afresh from them.
    /// Calling again after a completed call continues (optimizer and queue kept): `steps`,
    /// `batchSize` and `lr` may change, `seed` and `fusedLoss` are fixed by the first call
    /// (passing another value throws; `resetFineTune()` starts afresh from the current weights).
    /// One fine-tune runs at a time per encoder.
    #[wasm_bindgen(js_name = fineTune, unchecked_return_type = "Promise<number[]>")]
    pub fn fine_tune(&self, sentences: Array, options: JsValue) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let sentences = texts_of(sentences, "fineTune")?;
            if sentences.len() < 2 {
                return Err(js_err("fineTune", "needs at least 2 sentences (in-batch negatives)"));
            }
            let steps = number(&options, "steps", 10.0)?;
            let batch = number(&options, "batchSize", 8.0)?;
            let lr = number(&options, "lr", 1e-5)?;
            let seed_given = option::<js_sys::Number>(&options, "seed")?.map(|n| n.value_of());
            let seed = seed_given.unwrap_or(42.0);
            if !(steps >= 1.0 && steps.fract() == 0.0) || !(batch >= 2.0 && batch.fract() == 0.0) || !(lr > 0.0 && lr.is_finite()) || seed < 0.0 {
                return Err(js_err("fineTune", "steps >= 1 and batchSize >= 2 must be integers, lr a positive number, seed >= 0"));
            }
            let fused_given = match option::<js_sys::JsString>(&options, "fusedLoss")?.map(String::from) {
                None => None,
                Some(v) => Some(v.parse::<FusedLoss>().map_err(|_| js_err("fineTune", format!("fusedLoss `{v}` is not auto, on or off")))?),
            };
            let fused_loss = fused_given.unwrap_or(FusedLoss::Auto);
            let (steps, batch) = (steps as u64, (batch as usize).min(sentences.len()));
            let on_progress = option::<Function>(&options, "onProgress")?;
            let signal = cancel::signal_of(&options)?;
            // The tuner leaves the state while the steps run (other calls may use the encoder
            // meanwhile), and comes back only when every step ran.
            let mut tuner = {
                let mut s = state.borrow_mut();
                if s.tuning {
                    return Err(js_err("fineTune", "another fineTune call on this encoder is still running"));
                }
                // A later call continues with the first call's settings (optimizer and queue kept).
                let settings = match &s.tuner {
                    Some(t) => {
                        let first = t.settings();
                        if let Some(v) = seed_given.filter(|&v| v as u64 != first.seed) {
                            return Err(js_err("fineTune", format!("seed {v} differs from the first call's {}: call resetFineTune() to start afresh with another seed", first.seed)));
                        }
                        if let Some(v) = fused_given.filter(|&v| v != first.fused_loss) {
                            return Err(js_err("fineTune", format!("fusedLoss `{v}` differs from the first call's `{}`: call resetFineTune() to change it", first.fused_loss)));
                        }
                        first.clone()
                    }
                    None => TrainConfig { batch_size: batch, seed: seed as u64, lr, fused_loss, ..TrainConfig::default() },
                };
                check_step_memory(&s, &settings, batch)?;
                let tuner = match s.tuner.take() {
                    Some(t) => t,
                    None => FineTuner::new(&s.encoder, settings).map_err(|e| js_err("fineTune", e))?,
                };
                s.tuning = true;
                tuner
            };
            let first = tuner.steps_done();
            let mut hooks = JsHooks { signal, on_progress, steps, first, losses: Vec::new(), thrown: None };
            let batches = Batches::Cycle { sentences: &sentences, batch };
            let ended = run_steps(&mut tuner, &batches, &Schedule::Constant(lr), first + steps, &mut hooks).await;
            let mut s = state.borrow_mut();
            s.tuning = false;
            // Whatever did not complete keeps nothing: the tuner (its weights, optimizer and
            // queue) is dropped here, and the encoder is the one from before the call.
            let fail = |what: String| {
                js_err(
                    "fineTune",
                    format!("{what}; the encoder keeps the weights it had before this call. Try a lower lr, or run encoder.checkDevice() to test this device's gradients (or load with device: \"cpu\")"),
                )
            };
            match ended {
                Err(e) => Err(hooks.thrown.take().unwrap_or_else(|| js_err("fineTune", e))),
                Ok(Ended::Cancelled { done }) => {
                    Err(cancel::abort_error(&format!("fineTune: cancelled after {done} of {steps} steps; the encoder keeps the weights it had before this call")))
                }
                Ok(Ended::Diverged { step, what, .. }) => Err(fail(format!("{what} at step {} of this call", step - first))),
                Ok(Ended::Completed) => {
                    s.encoder = tuner.encoder();
                    s.tuner = Some(tuner);
                    Ok(hooks.losses.iter().map(|&l| JsValue::from_f64(l)).collect::<Array>().into())
                }
            }
        })
    }

    /// Forgets the fine-tuning state (AdamW moments, the queue, the step count, the first
    /// call's seed and fusedLoss); the weights tuned so far stay. The next `fineTune` starts
    /// afresh from them.
    #[wasm_bindgen(js_name = resetFineTune)]
    pub fn reset_fine_tune(&self) {
        self.state.borrow_mut().tuner = None;
    }

    /// Checks that this encoder's device computes the trainer's gradients right: small forward +
    /// backward graphs (each op kind fine-tuning uses, then a whole tiny encoder) run here and on
    /// the CPU backend and compared. Resolves to one `{ name, relErr, maxAbsErr, scale, finite,
    /// passed }` per case (`maxAbsErr`: max |difference|; `scale`: max |CPU gradient|; `relErr`:
    /// their ratio, NaN when not finite), as `iftcl check-device --json` writes them.
    #[wasm_bindgen(js_name = checkDevice, unchecked_return_type = "Promise<{ name: string, relErr: number, maxAbsErr: number, scale: number, finite: boolean, passed: boolean }[]>")]
    pub fn check_device(&self) -> Promise {
        let device = self.state.borrow().encoder.device().clone();
        future_to_promise(async move {
            let checks = iftcl::diagnose::check_gradients(&device).await.map_err(|e| js_err("checkDevice", e))?;
            let out = Array::new();
            for c in checks {
                let o = Object::new();
                Reflect::set(&o, &"name".into(), &c.name.as_str().into())?;
                Reflect::set(&o, &"relErr".into(), &JsValue::from_f64(c.rel_err()))?;
                Reflect::set(&o, &"maxAbsErr".into(), &JsValue::from_f64(c.max_abs_err))?;
                Reflect::set(&o, &"scale".into(), &JsValue::from_f64(c.scale))?;
                Reflect::set(&o, &"finite".into(), &JsValue::from_bool(c.finite))?;
                Reflect::set(&o, &"passed".into(), &JsValue::from_bool(c.passed()))?;
                out.push(&o);
            }
            Ok(out.into())
        })
    }

    /// The current weights as `model.safetensors` bytes (Hugging Face names): with the
    /// loaded config.json and tokenizer.json they make a model folder the native `iftcl` (and,
    /// except int8, sentence-transformers) loads. `options.dtype`: "f32" (default), "f16",
    /// "bf16" or "int8".
    #[wasm_bindgen(js_name = exportWeights, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_weights(&self, options: JsValue) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let dtype = option::<js_sys::JsString>(&options, "dtype")?.map(String::from).unwrap_or_else(|| "f32".into());
            let precision: Precision = dtype.parse().map_err(|e| js_err("exportWeights: options.dtype", e))?;
            let encoder = state.borrow().encoder.clone();
            let bytes = encoder.safetensors_bytes_async(precision).await.map_err(|e| js_err("exportWeights", e))?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }
}

/// The vectors of `texts`; with a `signal`, the event loop gets a turn between batches and an
/// abort ends the call with an `AbortError`.
async fn embed_texts(state: &Rc<RefCell<State>>, texts: &[String], signal: Option<&JsValue>) -> Result<Vec<Vec<f32>>, JsValue> {
    let encoder = state.borrow().encoder.clone();
    // The vectors (and their copy for JavaScript) must fit; the encoder itself works in batches.
    let text_bytes: usize = texts.iter().map(String::len).sum();
    let out = 2 * texts.len() as u64 * encoder.dim() as u64 * 4 + 4 * text_bytes as u64;
    reserve_heap(out, "embed", "embed fewer texts per call")?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let Some(signal) = signal else {
        return encoder.embed_async(&refs).await.map_err(|e| js_err("embed", e));
    };
    let between = |done: usize, total: usize| async move {
        cancel::next_turn().await.map_err(|_| iftcl::Error::Cancelled("no event-loop turn".into()))?;
        if cancel::aborted(signal) {
            return Err(iftcl::Error::Cancelled(format!("embed: cancelled after {done} of {total} sentences")));
        }
        Ok(())
    };
    encoder.embed_async_with(&refs, between).await.map_err(|e| match e {
        iftcl::Error::Cancelled(message) => cancel::abort_error(&message),
        e => js_err("embed", e),
    })
}

/// What `fineTune` does around each step: yield to the event loop and read the signal before
/// it, call `onProgress` after it.
struct JsHooks {
    signal: Option<JsValue>,
    on_progress: Option<Function>,
    /// Steps asked of this call, and the tuner's count when it began.
    steps: u64,
    first: u64,
    losses: Vec<f64>,
    /// What `onProgress` threw, handed back to the caller as it was thrown.
    thrown: Option<JsValue>,
}

impl StepHooks for JsHooks {
    async fn proceed(&mut self, step: u64) -> bool {
        let Some(signal) = &self.signal else { return true };
        if step > self.first && cancel::next_turn().await.is_err() {
            return false;
        }
        !cancel::aborted(signal)
    }

    fn after_step(&mut self, _tuner: &FineTuner, _texts: &[String], r: &StepReport) -> iftcl::Result<()> {
        self.losses.push(r.losses.total);
        let Some(f) = &self.on_progress else { return Ok(()) };
        let p = Object::new();
        let twins = r.losses.twins.map_or(JsValue::NULL, JsValue::from_f64);
        let fields = [("step", JsValue::from_f64((r.step - self.first) as f64)), ("steps", JsValue::from_f64(self.steps as f64)), ("loss", r.losses.total.into()), ("nce", r.losses.nce.into()), ("twins", twins)];
        for (k, v) in fields {
            let _ = Reflect::set(&p, &k.into(), &v);
        }
        f.call1(&JsValue::NULL, &p).map(|_| ()).map_err(|e| {
            let e = js_debug("onProgress", e);
            self.thrown = Some(e);
            iftcl::Error::InvalidArgument("onProgress threw".into())
        })
    }
}
