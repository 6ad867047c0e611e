// Paths the web tests share: the same variables as the Rust tests (tests/common/mod.rs).
import { createReadStream, readFileSync, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const root = path.resolve(web, "..");
export const modelDir = process.env.IFTCL_MODEL || path.join(root, "models/all-MiniLM-L6-v2");
const goldenPath = process.env.IFTCL_GOLDEN || path.join(root, "../shared/golden/all-MiniLM-L6-v2.json");
export const dataDir = process.env.IFTCL_DATA_DIR || path.join(root, "../shared/data");

for (const [what, p] of [["the model (run scripts/fetch-model.sh)", modelDir], ["the golden file (IFTCL_GOLDEN)", goldenPath], ["web/pkg (run scripts/build-wasm.sh)", path.join(web, "pkg")]]) {
  if (!existsSync(p)) throw new Error(`${what} not found at ${p}`);
}
export const golden = JSON.parse(readFileSync(goldenPath, "utf8"));

/// Throws on the first NaN or infinity of `a` or `b`, naming its index and side: no tolerance
/// check may pass on NaN (the same rule as the Rust side's iftcl::compare).
export function checkFinite(a, b) {
  if (a.length !== b.length) throw new Error(`compared vectors of different lengths: ${a.length} and ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new Error(`entry ${i} of the value is ${a[i]} (not finite)`);
    if (!Number.isFinite(b[i])) throw new Error(`entry ${i} of the reference is ${b[i]} (not finite)`);
  }
}

/// Cosine similarity; throws on NaN or infinity (see checkFinite).
export function cosine(a, b) {
  checkFinite(a, b);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

/// max |a − b|; throws on NaN or infinity (see checkFinite).
export function maxAbsDiff(a, b) {
  checkFinite(a, b);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/// The tensors of a safetensors file: { name: { dtype, shape, bytes } } (bytes: a view of the
/// tensor's data).
export function safetensors(bytes) {
  const view = Buffer.from(bytes.buffer ? bytes.buffer : bytes, bytes.byteOffset || 0, bytes.byteLength ?? bytes.length);
  const n = Number(view.readBigUInt64LE(0));
  const header = JSON.parse(view.subarray(8, 8 + n).toString("utf8"));
  delete header.__metadata__;
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    out[name] = { dtype: t.dtype, shape: t.shape, bytes: view.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) };
  }
  return out;
}
