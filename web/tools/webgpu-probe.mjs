// Diagnostic, not a test: loads the demo in headless Chromium on WebGPU (SwiftShader where
// there is no GPU), reports every shader the browser rejects (with the offending line), checks
// the golden embeddings, runs one 2-sentence fine-tune step and says whether the weights stay
// finite. Writes the rejected shaders to /tmp/probe/bad-shaders.json and the console log to
// /tmp/probe/logs.txt.
//
//   node tools/webgpu-probe.mjs                 (from web/, after scripts/build-wasm.sh)
//   FUSED=off LR=1e-30 EXTRA="--flag ..." node tools/webgpu-probe.mjs
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { createReadStream, existsSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { web, modelDir } from "../tests/common.mjs";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm" };
mkdirSync("/tmp/probe", { recursive: true });
const server = createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const file = url.startsWith("/model/") ? path.join(modelDir, url.slice(7)) : path.join(web, url === "/" ? "index.html" : url);
  if (!existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
  createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const port = server.address().port;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--enable-unsafe-webgpu", ...(process.env.EXTRA || "").split(" ").filter(Boolean)], headless: true });
const page = await (await browser.newContext()).newPage();
page.setDefaultTimeout(1_200_000);
const logs = [];
const t0 = Date.now();
page.on("console", (m) => { const s = `[${((Date.now()-t0)/1000).toFixed(0)}s] ${m.type()}: ${m.text()}`; logs.push(s); if (!s.includes("autotune")) console.log(s.slice(0, 3000)); });
page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
await page.addInitScript(() => {
  const orig = GPUDevice.prototype.createShaderModule;
  GPUDevice.prototype.createShaderModule = function (desc) {
    const m = orig.call(this, desc);
    m.getCompilationInfo().then((info) => {
      const errs = info.messages.filter((x) => x.type === "error");
      if (errs.length) {
        const lines = desc.code.split("\n");
        for (const e of errs) console.error(`SHADER ${desc.label}: ${e.message} at ${e.lineNum}:${e.linePos}\n> ${lines[e.lineNum - 1]}`);
        window.__bad = (window.__bad || []); window.__bad.push({ label: desc.label, code: desc.code, errs: errs.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`) });
      }
    });
    return m;
  };
});
await page.goto(`http://127.0.0.1:${port}/?device=webgpu`);
await page.waitForFunction(() => window.iftclDemo.ready || window.iftclDemo.error, null, { timeout: 1_200_000 });
console.log("ready", await page.evaluate(() => ({ ...window.iftclDemo })));
import { golden, cosine } from "../tests/common.mjs";
const g = golden.sentences.slice(0, 6);
const e0 = await page.evaluate(async (g) => (await window.iftclEncoder.embed(g)).map((v) => Array.from(v)), g);
console.log("golden cosines:", e0.map((v, i) => cosine(v, golden.embeddings[i]).toFixed(6)).join(" "), "after", (Date.now() - t0) / 1000, "s");
const r = await page.evaluate(async (FUSED) => {
  try { return await window.iftclEncoder.fineTune(["a man is playing a guitar.", "the cat sat on the mat."], { steps: 1, batchSize: 2, lr: FUSED.lr, fusedLoss: FUSED.fused, onProgress: (p) => console.log("progress " + JSON.stringify(p)) }); }
  catch (e) { return "ERR " + e.message; }
}, { fused: process.env.FUSED || "auto", lr: Number(process.env.LR || 1e-5) });
console.log("fineTune:", r, "after", (Date.now() - t0) / 1000, "s");
const e1 = await page.evaluate(async (g) => (await window.iftclEncoder.embed(g)).map((v) => Array.from(v)), g);
console.log("after 1 step: finite", e1.map((v) => v.every(Number.isFinite)).join(" "), "cos to start", e1.map((v, i) => cosine(v, e0[i]).toFixed(6)).join(" "));
const bad = await page.evaluate(() => window.__bad || []);
writeFileSync("/tmp/probe/bad-shaders.json", JSON.stringify(bad, null, 1));
writeFileSync("/tmp/probe/logs.txt", logs.join("\n"));
console.log("bad shaders:", bad.length);
await browser.close(); server.close();
