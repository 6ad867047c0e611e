// Diagnostic, not a test: loads the demo in headless Chromium on WebGPU (SwiftShader where
// there is no GPU), reports every shader the browser rejects (with the offending line), checks
// the golden embeddings, runs Encoder.checkDevice() (each op's gradients on WebGPU against the
// CPU's), then one 2-sentence fine-tune step, and says whether the weights stay finite. Writes
// the rejected shaders to /tmp/probe/bad-shaders.json and the console log to /tmp/probe/logs.txt.
//
//   node tools/webgpu-probe.mjs                 (from web/, after scripts/build-wasm.sh)
//   FUSED=off LR=1e-30 EXTRA="--flag ..." node tools/webgpu-probe.mjs
//   CHECK=0 node tools/webgpu-probe.mjs        (skip Encoder.checkDevice(), the per-op gradient check)
import { mkdirSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { golden, cosine, serveDemo } from "../tests/common.mjs";
mkdirSync("/tmp/probe", { recursive: true });
const { server, port } = await serveDemo();
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
const g = golden.sentences.slice(0, 6);
const e0 = await page.evaluate(async (g) => (await window.iftclEncoder.embed(g)).map((v) => Array.from(v)), g);
console.log("golden cosines:", e0.map((v, i) => cosine(v, golden.embeddings[i]).toFixed(6)).join(" "), "after", (Date.now() - t0) / 1000, "s");
if (process.env.CHECK !== "0") {
  const checks = await page.evaluate(async () => { try { return await window.iftclEncoder.checkDevice(); } catch (e) { return "ERR " + e.message; } });
  if (typeof checks === "string") console.log("checkDevice:", checks);
  else for (const c of checks) console.log(`${c.passed ? "ok" : c.finite ? "WRONG" : "NOT FINITE"}\t${c.relErr.toExponential(2)}\t${c.name}`);
  console.log("checkDevice after", (Date.now() - t0) / 1000, "s");
}
const r = await page.evaluate(async (FUSED) => {
  try { return await window.iftclEncoder.fineTune(["a man is playing a guitar.", "the cat sat on the mat."], { steps: 1, batchSize: 2, lr: FUSED.lr, fusedLoss: FUSED.fused, onProgress: (p) => console.log("progress " + JSON.stringify(p)) }); }
  catch (e) { return "ERR " + e.message; }
}, { fused: process.env.FUSED || "auto", lr: Number(process.env.LR || 1e-5) });
console.log("fineTune:", r, "after", (Date.now() - t0) / 1000, "s");
const e1 = await page.evaluate(async (g) => (await window.iftclEncoder.embed(g)).map((v) => Array.from(v)), g);
console.log("after 1 step: finite", e1.map((v) => v.every(Number.isFinite)).join(" "), "cos to start", e1.map((v, i) => cosine(v, e0[i]).toFixed(6)).join(" "));
// Which tensors went non-finite, and how much of each.
const nonFinite = await page.evaluate(async () => {
  const bytes = await window.iftclEncoder.exportWeights();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const out = [];
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [a, b] = t.data_offsets;
    const f = new Float32Array(bytes.slice(8 + n + a, 8 + n + b).buffer);
    let bad = 0, firstBad = -1;
    for (let i = 0; i < f.length; i++) if (!Number.isFinite(f[i])) { bad++; if (firstBad < 0) firstBad = i; }
    out.push(`${name} [${t.shape}]: ${bad}/${f.length} non-finite${bad ? `, first at ${firstBad}` : ""}`);
  }
  return out;
});
console.log("weights after the step:\n  " + nonFinite.join("\n  "));
const bad = await page.evaluate(() => window.__bad || []);
writeFileSync("/tmp/probe/bad-shaders.json", JSON.stringify(bad, null, 1));
writeFileSync("/tmp/probe/logs.txt", logs.join("\n"));
console.log("bad shaders:", bad.length);
await browser.close(); server.close();
