// Paths the web tests share: the same variables as the Rust tests (tests/common/mod.rs).
import assert from "node:assert/strict";
import { createReadStream, readFileSync, existsSync, mkdtempSync, statSync, renameSync, rmSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const root = path.resolve(web, "..");
export const modelDir = process.env.IFTCL_MODEL || path.join(root, "models/all-MiniLM-L6-v2");
const goldenPath = process.env.IFTCL_GOLDEN || path.join(root, "../shared/golden/all-MiniLM-L6-v2.json");
export const dataDir = process.env.IFTCL_DATA_DIR || path.join(root, "../shared/data");
/// The tiny seeded models of other encoder families and their PyTorch outputs (NAME/, NAME.json).
export const tinyDir = process.env.IFTCL_GOLDEN_TINY || path.join(root, "../shared/golden/tiny");

for (const [what, p] of [["the model (run scripts/fetch-model.sh)", modelDir], ["the golden file (IFTCL_GOLDEN)", goldenPath], ["the tiny golden models (IFTCL_GOLDEN_TINY)", tinyDir], ["web/pkg (run scripts/build-wasm.sh)", path.join(web, "pkg")]]) {
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

/// The header of a safetensors file: { header (its JSON, `__metadata__` included), start (where
/// the data begins), view (a Buffer over the bytes) }.
export function safetensorsHeader(bytes) {
  const view = Buffer.from(bytes.buffer ? bytes.buffer : bytes, bytes.byteOffset || 0, bytes.byteLength ?? bytes.length);
  const n = Number(view.readBigUInt64LE(0));
  return { header: JSON.parse(view.subarray(8, 8 + n).toString("utf8")), start: 8 + n, view };
}

/// `bytes` (a safetensors file) with its header's `__metadata__` replaced by `metadata`.
export function withMetadata(bytes, metadata) {
  const { header, start, view } = safetensorsHeader(bytes);
  header.__metadata__ = metadata;
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(text.length));
  return new Uint8Array(Buffer.concat([size, Buffer.from(text), view.subarray(start)]));
}

/// The values of a tensor of `safetensors()` as numbers (F32, F16, BF16).
export function tensorValues({ dtype, bytes }) {
  const out = [];
  for (let i = 0; i < bytes.length; i += dtype === "F32" ? 4 : 2) {
    if (dtype === "F32") out.push(bytes.readFloatLE(i));
    else if (dtype === "BF16") out.push(new Float32Array(new Uint32Array([bytes.readUInt16LE(i) << 16]).buffer)[0]);
    else if (dtype === "F16") {
      const h = bytes.readUInt16LE(i), e = (h >> 10) & 31, f = h & 1023, sign = h & 0x8000 ? -1 : 1;
      out.push(sign * (e === 0 ? f * 2 ** -24 : e === 31 ? (f ? NaN : Infinity) : (1 + f / 1024) * 2 ** (e - 15)));
    } else throw new Error(`tensorValues: dtype ${dtype}`);
  }
  return out;
}

/// ‖a − b‖ / ‖b‖, the relative L2 error of `a` against the reference `b`; throws on NaN or
/// infinity (see checkFinite). The same measure as the Rust side's iftcl::compare::rel_l2_err.
export function relL2(a, b) {
  checkFinite(a, b);
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] * b[i]; }
  return Math.sqrt(d) / Math.sqrt(n);
}

/// Parity of vectors against their references, the measure of the Rust tests
/// (tests/common/mod.rs assert_parity): for each pair the relative L2 error and the largest
/// absolute difference, each within its bound. Logs and returns the worst of each.
export function assertParity(what, got, want, maxRelL2, maxAbs) {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} vectors, ${want.length} references`);
  let worstRel = 0, worstAbs = 0;
  got.forEach((v, i) => {
    const rel = relL2(v, want[i]);
    const abs = maxAbsDiff(v, want[i]);
    if (!(rel <= maxRelL2)) throw new Error(`${what}: vector ${i}: relative L2 error ${rel.toExponential(3)} > ${maxRelL2}`);
    if (!(abs <= maxAbs)) throw new Error(`${what}: vector ${i}: max abs difference ${abs.toExponential(3)} > ${maxAbs}`);
    worstRel = Math.max(worstRel, rel);
    worstAbs = Math.max(worstAbs, abs);
  });
  console.log(`${what}: worst relative L2 error ${worstRel.toExponential(2)}, worst max abs difference ${worstAbs.toExponential(2)} over ${got.length} vectors`);
  return { worstRel, worstAbs };
}

/// `iftcl check-device --device cpu --json` of the native build: the gradient cases and their
/// CPU scales (max |gradient|) that the wasm build's checkDevice() must reproduce.
export function nativeCpuChecks() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iftcl-check-device-"));
  const json = path.join(dir, "checks.json");
  execFileSync(iftclBin(), ["check-device", "--device", "cpu", "--json", json], { env: { ...process.env, RUST_LOG: "error" } });
  return JSON.parse(readFileSync(json, "utf8")).cases;
}

/// checkDevice()'s cases against the native CPU's (nativeCpuChecks): the same cases in the same
/// order, each op case's reference gradient of the same size (`scale`, max |CPU gradient|,
/// within `maxScaleRel` relative: the wasm and native CPU builds differ only in float rounding), and
/// every case passed. Returns the number of cases whose device gradients differ from the CPU's
/// at all (maxAbsErr > 0).
export function assertChecksMatchNative(what, checks, native, maxScaleRel) {
  assert.deepEqual(checks.map((c) => c.name), native.map((c) => c.name), `${what}: the cases of iftcl check-device`);
  // The op cases' inputs come from a seeded generator, the same on every platform, so their
  // CPU gradients must match the native build's; the tiny encoder's weights are initialised at
  // random in each process, so its cases are matched by name only.
  checks.forEach((c, i) => {
    if (c.name.startsWith("tiny encoder: ")) return;
    const rel = Math.abs(c.scale - native[i].scale) / native[i].scale;
    assert.ok(rel <= maxScaleRel, `${what}: ${c.name}: CPU gradient scale ${c.scale} vs native ${native[i].scale} (relative ${rel.toExponential(2)})`);
  });
  const failed = checks.filter((c) => !c.passed);
  assert.deepEqual(failed, [], `${what}: gradient checks failed`);
  return checks.filter((c) => c.maxAbsErr > 0).length;
}

/// The tensors of a safetensors file: { name: { dtype, shape, bytes } } (bytes: a view of the
/// tensor's data).
export function safetensors(bytes) {
  const { header, start, view } = safetensorsHeader(bytes);
  const n = start - 8;
  delete header.__metadata__;
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    out[name] = { dtype: t.dtype, shape: t.shape, bytes: view.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) };
  }
  return out;
}

/// The first `n` sentences of STS-B dev (both sides of each pair): the speed figures' input.
export function stsbDev(n) {
  const text = readFileSync(path.join(dataDir, "sts/STSBenchmark/sts-dev.csv"), "utf8");
  const out = [];
  for (const line of text.split("\n")) {
    const cols = line.split("\t");
    if (cols.length >= 7) out.push(cols[5], cols[6]);
    if (out.length >= n) break;
  }
  return out.slice(0, n);
}

/// Notes a person might keep: the notes app's test adds the same five, and the small
/// fine-tune tests tune on them.
export const NOTES = [
  "My cat sleeps on the sofa all afternoon.",
  "Stock markets fell sharply after the announcement.",
  "Boil the pasta for ten minutes, then add the tomato sauce.",
  "Heavy rain and strong wind are expected this weekend.",
  "The train to Lyon leaves at seven from platform four.",
];

/// The first `n` pairs of STS-B dev with their gold scores: { a, b, score }.
export function stsbDevPairs(n) {
  const text = readFileSync(path.join(dataDir, "sts/STSBenchmark/sts-dev.csv"), "utf8");
  const out = [];
  for (const line of text.split("\n")) {
    const cols = line.split("\t");
    if (cols.length >= 7) out.push({ a: cols[5], b: cols[6], score: Number(cols[4]) });
    if (out.length >= n) break;
  }
  return out;
}

/// Spearman's rank correlation of two equally long lists (ties get their average rank).
export function spearman(x, y) {
  const ranks = (v) => {
    const order = v.map((value, i) => ({ value, i })).sort((p, q) => p.value - q.value);
    const r = new Array(v.length);
    for (let lo = 0; lo < order.length; ) {
      let hi = lo;
      while (hi + 1 < order.length && order[hi + 1].value === order[lo].value) hi++;
      for (let k = lo; k <= hi; k++) r[order[k].i] = (lo + hi) / 2 + 1;
      lo = hi + 1;
    }
    return r;
  };
  const [rx, ry] = [ranks(x), ranks(y)];
  const mean = (v) => v.reduce((s, a) => s + a, 0) / v.length;
  const [mx, my] = [mean(rx), mean(ry)];
  let [sxy, sxx, syy] = [0, 0, 0];
  for (let i = 0; i < rx.length; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
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

/// `src` (default: the model) with its weights in `precision` (f16, bf16, int8), written by the
/// native `iftcl convert` into models/converted/<name>-<precision>/ and written again when the
/// model or the binary is newer. This is where the demo's default download, the f16 model,
/// comes from (scripts/serve-web.sh writes the same folder).
export function convertedModel(precision, src = modelDir) {
  const bin = iftclBin();
  const dest = path.join(process.env.IFTCL_CONVERTED || path.join(root, "models/converted"), `${path.basename(src)}-${precision}`);
  const mtime = (p) => statSync(p).mtimeMs;
  const weights = path.join(dest, "model.safetensors");
  if (existsSync(weights) && mtime(weights) >= Math.max(mtime(path.join(src, "model.safetensors")), mtime(bin))) return dest;
  // Written under a name of this process's, then renamed: test files running at once never
  // see half a folder.
  const mine = `${dest}.${process.pid}`;
  mkdirSync(path.dirname(dest), { recursive: true });
  execFileSync(bin, ["convert", "--dtype", precision, src, mine], { env: { ...process.env, RUST_LOG: "warn" }, stdio: ["ignore", "ignore", "inherit"] });
  rmSync(dest, { recursive: true, force: true });
  try {
    renameSync(mine, dest);
  } catch (e) {
    rmSync(mine, { recursive: true, force: true });
    if (!existsSync(weights)) throw e;
  }
  return dest;
}

/// The CPU-only module of a build's web/pkg folder (`pkg`: one holding iftcl_wasm_cpu.js and
/// iftcl_wasm_cpu_bg.wasm), initialised under Node: its exports (`Encoder`, ...). The tools that
/// measure a build (web/tools/throughput.mjs, hot-functions.mjs) load it this way.
export async function cpuModule(pkg) {
  const module = await import(pathToFileURL(path.join(pkg, "iftcl_wasm_cpu.js")).href);
  await module.default({ module_or_path: readFileSync(path.join(pkg, "iftcl_wasm_cpu_bg.wasm")) });
  return module;
}

/// The native `iftcl` binary of the Cargo build (same folder as the Rust tests use).
export function iftclBin() {
  const target = process.env.CARGO_TARGET_DIR || path.join(process.env.HOME, ".cache/iftcl-target");
  const bin = path.join(target, "release/iftcl");
  if (!existsSync(bin)) throw new Error(`${bin} not built: run cargo build --release --workspace`);
  return bin;
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm", ".ts": "text/plain" };

/// Serves web/ as the site and a model folder under /model/ on 127.0.0.1 (a free port): `model`
/// (default: the model in f16, the demo's default download), `pkg` (default web/pkg) under
/// /pkg/, `site` (default web/) for everything else.
/// Resolves to { server, port, requests, model } (requests: each path asked for, in order;
/// model: the folder served); close it with server.close().
export async function serveDemo({ pkg = path.join(web, "pkg"), site = web, model = convertedModel("f16") } = {}) {
  const requests = [];
  // The files sent, in order (for byte counts).
  const files = [];
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    requests.push(url);
    const file = url.startsWith("/model/") ? path.join(model, url.slice(7)) : url.startsWith("/pkg/") ? path.join(pkg, url.slice(5)) : path.join(site, url === "/" ? "index.html" : url);
    const inside = [site, pkg, model].some((dir) => file.startsWith(dir + path.sep));
    if (!inside || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    files.push(file);
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, port: server.address().port, requests, files, model };
}
