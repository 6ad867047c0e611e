// Paths the web tests share: the same variables as the Rust tests (tests/common/mod.rs).
import { readFileSync, existsSync } from "node:fs";
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

export function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

/// The model folder's files as bytes, keyed as Encoder.load takes them.
export function modelFiles(dir = modelDir) {
  const read = (f) => readFileSync(path.join(dir, f));
  return {
    config: read("config.json"),
    weights: read("model.safetensors"),
    tokenizer: read("tokenizer.json"),
    pooling: read("1_Pooling/config.json"),
    modules: read("modules.json"),
    sentenceBertConfig: read("sentence_bert_config.json"),
  };
}

/// The native `iftcl` binary of the Cargo build (same folder as the Rust tests use).
export function iftclBin() {
  const target = process.env.CARGO_TARGET_DIR || path.join(process.env.HOME, ".cache/iftcl-target");
  const bin = path.join(target, "release/iftcl");
  if (!existsSync(bin)) throw new Error(`${bin} not built: run cargo build --release --workspace`);
  return bin;
}
