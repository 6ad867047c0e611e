// The worker side of `Encoder` (index.js), shared by worker.js (the full module) and
// worker-cpu.js (the CPU-only one), each a worker script of one static import, so bundlers
// build each as one chunk. It owns the wasm module and one encoder, answers the
// page's calls one message each, and sends the vectors back by transfer (their buffers move
// to the page, no copy). Cancellation: the module gives the event loop a turn between the
// batches of `embed` and the steps of `fineTune` and reads the call's AbortSignal there
// (crates/iftcl-wasm/src/cancel.rs), so a `cancel` message is read while the call runs.
import { requireSimd } from "./simd.js";

let encoder = null;
const running = new Map(); // call id -> AbortController

/** The response for a model file; the errors read as the module's own fetch's (js_input.rs). */
async function fetchOk(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`fetching ${url}: ${e.message}`);
  }
  if (!response.ok) throw new Error(`fetching ${url}: HTTP status ${response.status}`);
  return response;
}

/** A model file's bytes. */
async function fetchBytes(url) {
  return new Uint8Array(await (await fetchOk(url)).arrayBuffer());
}

/**
 * A model file's bytes as a stream that downloads at full speed before anyone reads it (a
 * response's own body waits for its reader): the module converts the weights as they arrive.
 * Where there is no TransformStream, the bytes once all there.
 */
function fetchStream(url) {
  if (typeof TransformStream !== "function") return fetchBytes(url);
  const { readable, writable } = new TransformStream({}, undefined, { highWaterMark: Infinity });
  (async () => {
    const response = await fetchOk(url);
    await response.body.pipeTo(writable, { preventAbort: true }).catch((e) => {
      throw new Error(`fetching ${url}: ${e?.message ?? e}`);
    });
  })().catch((e) => writable.abort(e).catch(() => {}));
  return readable;
}

const ops = {
  async load(module, [files, options]) {
    requireSimd();
    if (encoder) throw new Error("Encoder.load: this worker already holds an encoder");
    // Every download starts now, while the module compiles, and the module's Encoder.load takes
    // the promises: it parses the tokenizer while the weights still arrive. Each promise's
    // failure is reported by Encoder.load (or lost with a failed init, which says why).
    const fetchOne = (key, url) => (key === "weights" ? fetchStream(url) : fetchBytes(url));
    const started = Object.fromEntries(Object.entries(files).map(([key, v]) => [key, typeof v === "string" ? fetchOne(key, v) : v]));
    for (const v of Object.values(started)) if (v instanceof Promise) v.catch(() => {});
    const url = options[module.urlOption];
    await module.init(url ? { module_or_path: url } : undefined);
    // For profiles of the load (web/tools/load-timeline.mjs reads them).
    performance.mark(`iftcl: module ready (${module.name})`);
    encoder = await module.Encoder.load(started, { device: options.device });
    performance.mark("iftcl: encoder loaded");
    return { device: encoder.device, dim: encoder.dim };
  },
  embed: (_, [texts], signal) => encoder.embed(texts, { signal }),
  similarity: (_, [a, b]) => encoder.similarity(a, b),
  matrix: (_, [texts]) => encoder.matrix(texts),
  fineTune(_module, [sentences, options], signal, id) {
    const onProgress = options.progress ? (p) => postMessage({ id, progress: p }) : undefined;
    const { progress: _, ...rest } = options;
    return encoder.fineTune(sentences, { ...rest, onProgress, signal });
  },
  resetFineTune: (_) => encoder.resetFineTune(),
  checkDevice: (_) => encoder.checkDevice(),
  exportWeights: (_, [options]) => encoder.exportWeights(options),
};

/** The buffers of a result that move to the page instead of being copied. */
function transferables(value) {
  if (ArrayBuffer.isView(value)) return [value.buffer];
  if (Array.isArray(value)) return value.flatMap((v) => (ArrayBuffer.isView(v) ? [v.buffer] : []));
  return [];
}

/**
 * Answers the page's messages with one wasm module: `module` = { init, Encoder, name,
 * urlOption } (urlOption: the load option that says where its .wasm is served).
 */
export function serve(module) {
  self.onmessage = (event) => onMessage(module, event);
}

const onMessage = async (module, { data: { id, op, args } }) => {
  if (op === "cancel") {
    running.get(args[0])?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(id, controller);
  try {
    if (!ops[op]) throw new Error(`unknown call ${op}`);
    if (op !== "load" && !encoder) throw new Error(`${op}: no encoder loaded in this worker`);
    const value = await ops[op](module, args, controller.signal, id);
    postMessage({ id, value }, transferables(value));
  } catch (e) {
    postMessage({ id, error: { name: e?.name || "Error", message: String(e?.message ?? e) } });
  } finally {
    running.delete(id);
  }
};
