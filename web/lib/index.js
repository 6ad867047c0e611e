// iftcl for web pages: the encoder runs in a Web Worker (worker.js), so the page keeps
// repainting and taking input while sentences embed or a fine-tune runs. Same calls as the
// module's own `Encoder` (inline.js runs that one on the calling thread), each returning a
// promise; vectors arrive as Float32Arrays moved from the worker, not copied.
import { requireSimd, simdSupported } from "./simd.js";

export { simdSupported };

const FILE_KEYS = ["config", "weights", "tokenizer", "pooling", "modules", "sentenceBertConfig", "sentenceTransformersConfig"];

function abortError(message) {
  const e = new Error(message);
  e.name = "AbortError";
  return e;
}

/** Whether the browser offers a WebGPU adapter (an adapter request that fails or throws: no). */
async function hasWebGpuAdapter() {
  try {
    return Boolean(await globalThis.navigator?.gpu?.requestAdapter());
  } catch {
    return false;
  }
}

/** A URL relative to the page, made absolute: the worker would resolve it against its own script. */
const absolute = (url) => new URL(url, globalThis.document?.baseURI ?? globalThis.location?.href).href;

/** One worker and its calls in flight. */
class Channel {
  constructor(worker) {
    this.worker = worker;
    this.next = 1;
    this.calls = new Map();
    worker.onmessage = ({ data }) => {
      const call = this.calls.get(data.id);
      if (!call) return;
      if ("progress" in data) {
        call.onProgress?.(data.progress);
        return;
      }
      this.calls.delete(data.id);
      if (data.error) {
        const e = new Error(data.error.message);
        e.name = data.error.name;
        call.reject(e);
      } else call.resolve(data.value);
    };
    worker.onerror = (event) => this.failAll(new Error(`iftcl worker failed: ${event.message || "could not load worker.js"}`));
  }

  failAll(error) {
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
  }

  call(op, args, { signal, onProgress } = {}) {
    if (!this.worker) return Promise.reject(new Error(`${op}: the encoder was terminated`));
    if (signal?.aborted) return Promise.reject(abortError(`${op}: cancelled before it started`));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const cancel = () => this.worker?.postMessage({ op: "cancel", args: [id] });
      signal?.addEventListener("abort", cancel, { once: true });
      const settled = (f) => (v) => {
        signal?.removeEventListener("abort", cancel);
        f(v);
      };
      this.calls.set(id, { resolve: settled(resolve), reject: settled(reject), onProgress });
      try {
        this.worker.postMessage({ id, op, args });
      } catch (e) {
        // An argument the structured clone refuses (a function, a DOM node).
        this.calls.delete(id);
        reject(new Error(`${op}: ${e.message}`));
      }
    });
  }
}

/** A sentence encoder in a Web Worker (WebGPU there when the browser offers it, else the CPU). */
export class Encoder {
  #channel;
  #device;
  #dim;

  constructor(channel, device, dim) {
    this.#channel = channel;
    this.#device = device;
    this.#dim = dim;
  }

  /**
   * Starts a worker and loads the model in it. `files`: as the module's Encoder.load takes them
   * (bytes or URLs; URLs resolve against the page). `options`: `device` ("auto" | "webgpu" |
   * "cpu"; "cpu", and "auto" in a browser that offers no WebGPU adapter, load the CPU-only
   * module: 4.3 MB instead of 19),
   * `wasmUrl` and `cpuWasmUrl` (where iftcl_wasm_bg.wasm and iftcl_wasm_cpu_bg.wasm are
   * served; default: beside this file), `workerUrl` (the worker script; default: worker-cpu.js beside this file for the CPU-only
   * module, worker.js otherwise).
   */
  static async load(files, options = {}) {
    requireSimd();
    if (typeof Worker !== "function") throw new Error("Encoder.load: this environment has no Web Worker; use iftcl/inline");
    if (!files || typeof files !== "object") throw new Error("Encoder.load: expects { config, weights, tokenizer, ... }");
    const sent = {};
    for (const key of FILE_KEYS) {
      const v = files[key];
      if (v !== undefined && v !== null) sent[key] = typeof v === "string" || v instanceof URL ? absolute(v) : v;
    }
    // The literal `new Worker(new URL("./worker.js", import.meta.url), ...)` is the form that
    // bundlers (Vite, webpack 5) recognise and bundle as a worker. The CPU-only module's worker
    // for "cpu", and for "auto" where this page has no WebGPU adapter: without one the full
    // module would run on the CPU too, after downloading its WebGPU code for nothing.
    const choice = options.device ?? "auto";
    const cpuOnly = choice === "cpu" || (choice === "auto" && !(await hasWebGpuAdapter()));
    const worker = options.workerUrl
      ? new Worker(absolute(options.workerUrl), { type: "module" })
      : cpuOnly
        ? new Worker(new URL("./worker-cpu.js", import.meta.url), { type: "module" })
        : new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    const channel = new Channel(worker);
    try {
      const wasmUrl = options.wasmUrl ? absolute(options.wasmUrl) : undefined;
      const cpuWasmUrl = options.cpuWasmUrl ? absolute(options.cpuWasmUrl) : undefined;
      const { device, dim } = await channel.call("load", [sent, { device: choice, wasmUrl, cpuWasmUrl }]);
      return new Encoder(channel, device, dim);
    } catch (e) {
      channel.worker.terminate();
      throw e;
    }
  }

  /** `"webgpu: <adapter>"` or `"cpu"`. */
  get device() {
    return this.#device;
  }

  /** Width of the sentence vectors. */
  get dim() {
    return this.#dim;
  }

  /** One Float32Array per text. `options.signal` (AbortSignal) cancels between batches of 64. */
  embed(texts, options = {}) {
    return this.#channel.call("embed", [texts], options);
  }

  /** Cosine similarity of two texts. */
  similarity(a, b) {
    return this.#channel.call("similarity", [a, b]);
  }

  /** The cosine-similarity matrix of `texts`, one Float32Array row per text. */
  matrix(texts) {
    return this.#channel.call("matrix", [texts]);
  }

  /**
   * IFTCL fine-tuning steps (options as the module's fineTune: steps, batchSize, lr, seed,
   * fusedLoss, onProgress). `options.signal` cancels after the step that is running: the call
   * rejects with an AbortError and the encoder keeps the weights it had before the call (as
   * when a step fails).
   */
  fineTune(sentences, options = {}) {
    const { onProgress, signal, ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== "function") return Promise.reject(new Error("options: `onProgress` has the wrong type"));
    return this.#channel.call("fineTune", [sentences, { ...rest, progress: Boolean(onProgress) }], { signal, onProgress });
  }

  /** Forgets the optimizer and queue; the weights stay. */
  resetFineTune() {
    return this.#channel.call("resetFineTune", []);
  }

  /** This device's gradients against the CPU's: `[{ name, relErr, maxAbsErr, scale, finite, passed }]`. */
  checkDevice() {
    return this.#channel.call("checkDevice", []);
  }

  /** The current weights as model.safetensors bytes (`options.dtype`: "f32", "f16", "bf16", "int8"). */
  exportWeights(options = {}) {
    return this.#channel.call("exportWeights", [options]);
  }

  /** Stops the worker at once (a running call rejects); the encoder cannot be used after. */
  terminate() {
    const channel = this.#channel;
    channel.worker?.terminate();
    channel.worker = null;
    channel.failAll(abortError("the encoder was terminated"));
  }
}
