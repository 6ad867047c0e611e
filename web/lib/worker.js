// The worker side of `Encoder` (index.js): owns the wasm module and one encoder, answers the
// page's calls one message each, and sends the vectors back by transfer (their buffers move
// to the page, no copy). Cancellation: `embed` works in chunks and gives the event loop a turn
// between them, `fineTune` between steps (crates/iftcl-wasm/src/cancel.rs), so a `cancel`
// message is read while the call runs.
import init, { Encoder } from "./iftcl_wasm.js";
import { requireSimd } from "./simd.js";

/** Sentences per chunk of `embed`: the cancellation point, and the library's batch size. */
const CHUNK = 64;
let encoder = null;
const running = new Map(); // call id -> AbortController

const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

function abortError(message) {
  const e = new Error(message);
  e.name = "AbortError";
  return e;
}

/**
 * `encoder.embed` in chunks of CHUNK sentences, with a turn of the event loop between chunks.
 * The chunks are cut from the texts sorted by length (longest first, as the library batches
 * them), so a chunk pads its sentences no more than one call on all of them would; the rows
 * go back to their texts' positions.
 */
async function embedInChunks(texts, signal) {
  if (!Array.isArray(texts)) throw new Error("embed: expects an array of strings");
  // An empty array or a non-string is refused by the module, with its message.
  if (texts.length <= CHUNK || texts.some((t) => typeof t !== "string")) return encoder.embed(texts);
  const order = texts.map((_, i) => i).sort((a, b) => texts[b].length - texts[a].length);
  const rows = new Array(texts.length);
  for (let start = 0; start < order.length; start += CHUNK) {
    if (start > 0) await nextTurn();
    if (signal.aborted) throw abortError(`embed: cancelled after ${start} of ${texts.length} sentences`);
    const part = order.slice(start, start + CHUNK);
    const out = await encoder.embed(part.map((i) => texts[i]));
    part.forEach((i, k) => (rows[i] = out[k]));
  }
  return rows;
}

/** A model file's bytes; the errors read as the module's own fetch's (js_input.rs). */
async function fetchBytes(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`fetching ${url}: ${e.message}`);
  }
  if (!response.ok) throw new Error(`fetching ${url}: HTTP status ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

const ops = {
  async load([files, options]) {
    requireSimd();
    if (encoder) throw new Error("Encoder.load: this worker already holds an encoder");
    // Every download starts now, while the module compiles, and the module's Encoder.load takes
    // the promises: it parses the tokenizer while the weights still arrive. Each promise's
    // failure is reported by Encoder.load (or lost with a failed init, which says why).
    const started = Object.fromEntries(Object.entries(files).map(([key, v]) => [key, typeof v === "string" ? fetchBytes(v) : v]));
    for (const v of Object.values(started)) if (v instanceof Promise) v.catch(() => {});
    await init(options.wasmUrl ? { module_or_path: options.wasmUrl } : undefined);
    encoder = await Encoder.load(started, { device: options.device });
    return { device: encoder.device, dim: encoder.dim };
  },
  embed: ([texts], signal) => embedInChunks(texts, signal),
  similarity: ([a, b]) => encoder.similarity(a, b),
  matrix: ([texts]) => encoder.matrix(texts),
  fineTune([sentences, options], signal, id) {
    const onProgress = options.progress ? (p) => postMessage({ id, progress: p }) : undefined;
    const { progress: _, ...rest } = options;
    return encoder.fineTune(sentences, { ...rest, onProgress, signal });
  },
  resetFineTune: () => encoder.resetFineTune(),
  checkDevice: () => encoder.checkDevice(),
  exportWeights: ([options]) => encoder.exportWeights(options),
};

/** The buffers of a result that move to the page instead of being copied. */
function transferables(value) {
  if (ArrayBuffer.isView(value)) return [value.buffer];
  if (Array.isArray(value)) return value.flatMap((v) => (ArrayBuffer.isView(v) ? [v.buffer] : []));
  return [];
}

self.onmessage = async ({ data: { id, op, args } }) => {
  if (op === "cancel") {
    running.get(args[0])?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(id, controller);
  try {
    if (!ops[op]) throw new Error(`unknown call ${op}`);
    if (op !== "load" && !encoder) throw new Error(`${op}: no encoder loaded in this worker`);
    const value = await ops[op](args, controller.signal, id);
    postMessage({ id, value }, transferables(value));
  } catch (e) {
    postMessage({ id, error: { name: e?.name || "Error", message: String(e?.message ?? e) } });
  } finally {
    running.delete(id);
  }
};
