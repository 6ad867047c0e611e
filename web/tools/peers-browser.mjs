// iftcl in the browser beside transformers.js, in one headless Chromium (CPU path), alternating
// rounds, each in a fresh browser context (empty HTTP cache and Cache Storage): the bytes the
// page downloads (counted by the local server, per page), the time to the first embedding
// (from the start of navigation, the library loaded and the model fetched), and sentences/s
// over 1,000 STS-B dev sentences in batches of 64. Medians over the rounds. Bytes are given as
// served (this server does not compress) and as gzip -9 would send them.
//
//   node web/tools/peers-browser.mjs [ROUNDS]     (default 3)
//
// Contenders: iftcl's demo page, encoder in its Web Worker, with the f16 model file (what the
// demo and the npm package's README serve) and with the int8 one; transformers.js (@huggingface/transformers, pinned
// below) with dtype "fp32" and "q8" (its default for this model), one thread each (the page is
// not cross-origin isolated, so neither gets wasm threads). transformers.js gets the ONNX files
// scripts/bench-cpu-peers.sh exports from the same model folder (torch.onnx, then ONNX
// Runtime's BERT fusions; q8 = quantize_dynamic, int8 per channel), in the Hub's layout
// (onnx/model.onnx, onnx/model_quantized.onnx): the fused graph is, if anything, faster than the
// Hub's. Installs transformers.js once into $IFTCL_PEERS/tjs (npm, --ignore-scripts: only its
// web build is used). Needs the wasm build (scripts/build-wasm.sh), the release `iftcl` (for
// the f16 file) and the ONNX files (run scripts/bench-cpu-peers.sh once). Run it on a quiet
// machine: it prints the load average.
// IFTCL_BASELINE_PKG=DIR adds another build's web/pkg (scripts/build-wasm.sh's output, from a
// checkout of an earlier commit) as a fifth contender, the same demo and f16 file, so that a
// change is measured against the build before it in the same rounds.
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { convertedModel, modelDir, serveDemo, stsbDev } from "../tests/common.mjs";

/** A file's size gzipped at level 9 (what a web server that compresses would send), cached. */
const gzipped = new Map();
function gzipSize(file) {
  if (!gzipped.has(file)) gzipped.set(file, gzipSync(readFileSync(file), { level: 9 }).length);
  return gzipped.get(file);
}

const TJS_VERSION = "3.8.0";
const rounds = Number(process.argv[2] || 3);
const peers = process.env.IFTCL_PEERS || path.join(os.homedir(), ".cache/iftcl-peers");
const onnx = path.join(peers, "onnx");
const tjs = path.join(peers, "tjs");
const SENTENCES = stsbDev(1000);

for (const f of ["model.onnx", "model-int8.onnx", "tokenizer.json"]) {
  if (!existsSync(path.join(onnx, f))) throw new Error(`${path.join(onnx, f)} missing: run scripts/bench-cpu-peers.sh once (it exports the ONNX files)`);
}
const tjsDist = path.join(tjs, "node_modules/@huggingface/transformers/dist");
if (!existsSync(path.join(tjsDist, "transformers.min.js"))) {
  mkdirSync(tjs, { recursive: true });
  if (!existsSync(path.join(tjs, "package.json"))) writeFileSync(path.join(tjs, "package.json"), '{ "private": true }\n');
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", `@huggingface/transformers@${TJS_VERSION}`], { cwd: tjs, stdio: "inherit" });
}

// The transformers.js page: the library, its ONNX Runtime wasm, the model in the Hub's layout.
const PAGE = `<!doctype html><meta charset="utf-8"><title>transformers.js</title><script type="module">
const params = new URLSearchParams(location.search);
window.peer = { ready: false, error: null, firstEmbedMs: null };
try {
  const { pipeline, env } = await import("/tjs/transformers.min.js");
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = "/hf/";
  env.backends.onnx.wasm.wasmPaths = "/tjs/";
  const extractor = await pipeline("feature-extraction", "all-MiniLM-L6-v2", { dtype: params.get("dtype"), device: "wasm" });
  await extractor(["first"], { pooling: "mean", normalize: true });
  window.peer.firstEmbedMs = performance.now();
  window.peer.embed = async (texts) => {
    const out = [];
    for (let i = 0; i < texts.length; i += 64) out.push(...(await extractor(texts.slice(i, i + 64), { pooling: "mean", normalize: true })).tolist());
    return out.length;
  };
  window.peer.ready = true;
} catch (e) {
  window.peer.error = String(e && e.stack || e);
}
</script>`;
const HF_FILES = {
  "config.json": path.join(modelDir, "config.json"),
  "tokenizer.json": path.join(onnx, "tokenizer.json"),
  "tokenizer_config.json": path.join(onnx, "tokenizer_config.json"),
  "onnx/model.onnx": path.join(onnx, "model.onnx"),
  "onnx/model_quantized.onnx": path.join(onnx, "model-int8.onnx"),
};
const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

function servePeer() {
  // The files sent; their gzipped sizes are computed after the round, never while serving.
  const served = { bytes: 0, gzip: 0, files: [] };
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (url === "/" || url === "/index.html") {
      served.bytes += Buffer.byteLength(PAGE);
      served.gzip += gzipSync(PAGE, { level: 9 }).length;
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
      return;
    }
    const file = url.startsWith("/tjs/") ? path.join(tjsDist, path.basename(url)) : url.startsWith("/hf/all-MiniLM-L6-v2/") ? HF_FILES[url.slice("/hf/all-MiniLM-L6-v2/".length)] : null;
    if (!file || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    served.bytes += statSync(file).size;
    served.files.push(file);
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok({ server, port: server.address().port, served })));
}

/** One round of iftcl's demo (worker mode, f16): bytes, first embedding, throughput. */
async function iftclRound(browser, site) {
  const before = site.files.length;
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(300_000);
  await page.goto(`http://127.0.0.1:${site.port}/?device=cpu`);
  await page.waitForFunction(() => window.iftclDemo.ready || window.iftclDemo.error, null, { timeout: 300_000 });
  const state = await page.evaluate(() => ({ error: window.iftclDemo.error, firstEmbedMs: window.iftclDemo.firstEmbedMs }));
  if (state.error) throw new Error(`iftcl demo: ${state.error}`);
  const files = site.files.slice(before);
  const bytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
  const gzip = files.reduce((sum, f) => sum + gzipSize(f), 0);
  const seconds = await page.evaluate(async (texts) => {
    const t0 = performance.now();
    await window.iftclEncoder.embed(texts);
    return (performance.now() - t0) / 1000;
  }, SENTENCES);
  await context.close();
  return { first_s: state.firstEmbedMs / 1000, mb: bytes / 1e6, gzip_mb: gzip / 1e6, per_s: SENTENCES.length / seconds };
}

async function peerRound(browser, peer, dtype) {
  peer.served.bytes = 0;
  peer.served.gzip = 0;
  peer.served.files = [];
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(300_000);
  await page.goto(`http://127.0.0.1:${peer.port}/?dtype=${dtype}`);
  await page.waitForFunction(() => window.peer.ready || window.peer.error, null, { timeout: 300_000 });
  const state = await page.evaluate(() => ({ error: window.peer.error, firstEmbedMs: window.peer.firstEmbedMs }));
  if (state.error) throw new Error(`transformers.js ${dtype}: ${state.error}`);
  const gzip = peer.served.gzip + peer.served.files.reduce((sum, f) => sum + gzipSize(f), 0);
  const [mb, gzip_mb] = [peer.served.bytes / 1e6, gzip / 1e6];
  const seconds = await page.evaluate(async (texts) => {
    const t0 = performance.now();
    const n = await window.peer.embed(texts);
    if (n !== texts.length) throw new Error(`${n} vectors for ${texts.length} texts`);
    return (performance.now() - t0) / 1000;
  }, SENTENCES);
  await context.close();
  return { first_s: state.firstEmbedMs / 1000, mb, gzip_mb, per_s: SENTENCES.length / seconds };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const site = await serveDemo();
const siteInt8 = await serveDemo({ model: convertedModel("int8") });
const baselinePkg = process.env.IFTCL_BASELINE_PKG;
const siteBaseline = baselinePkg ? await serveDemo({ pkg: path.resolve(baselinePkg) }) : null;
const peer = await servePeer();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"], headless: true });
const runs = { "iftcl (worker, f16)": [], "iftcl (worker, int8)": [], "transformers.js fp32": [], "transformers.js q8": [] };
if (siteBaseline) runs["baseline build (worker, f16)"] = [];
try {
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0].model}; load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`chromium ${browser.version()}, transformers.js ${TJS_VERSION}, ${SENTENCES.length} STS-B dev sentences, batches of 64`);
  for (let r = 1; r <= rounds; r++) {
    for (const [name, run] of [
      ["iftcl (worker, f16)", () => iftclRound(browser, site)],
      ["iftcl (worker, int8)", () => iftclRound(browser, siteInt8)],
      ["transformers.js fp32", () => peerRound(browser, peer, "fp32")],
      ["transformers.js q8", () => peerRound(browser, peer, "q8")],
      ...(siteBaseline ? [["baseline build (worker, f16)", () => iftclRound(browser, siteBaseline)]] : []),
    ]) {
      const out = await run();
      runs[name].push(out);
      console.log(`round ${r} ${name}: first embedding ${out.first_s.toFixed(2)} s, ${out.mb.toFixed(2)} MB (${out.gzip_mb.toFixed(2)} MB gzipped), ${out.per_s.toFixed(1)} sentences/s`);
    }
  }
  console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log("\n| contender | MB downloaded (as served / gzip -9) | first embedding (s) | sentences/s |\n|---|---:|---:|---:|");
  for (const [name, list] of Object.entries(runs)) {
    console.log(`| ${name} | ${median(list.map((x) => x.mb)).toFixed(2)} / ${median(list.map((x) => x.gzip_mb)).toFixed(2)} | ${median(list.map((x) => x.first_s)).toFixed(2)} | ${median(list.map((x) => x.per_s)).toFixed(1)} |`);
  }
  const m = (name, k) => median(runs[name].map((x) => x[k]));
  console.log(`\niftcl / transformers.js q8: throughput ${(m("iftcl (worker, f16)", "per_s") / m("transformers.js q8", "per_s")).toFixed(2)}x, first embedding ${(m("iftcl (worker, f16)", "first_s") / m("transformers.js q8", "first_s")).toFixed(2)}x the time, bytes ${(m("iftcl (worker, f16)", "mb") / m("transformers.js q8", "mb")).toFixed(2)}x`);
} finally {
  await browser.close();
  site.server.close();
  siteInt8.server.close();
  siteBaseline?.server.close();
  peer.server.close();
}
