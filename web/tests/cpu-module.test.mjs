// The CPU-only module (web/pkg/iftcl_wasm_cpu*: iftcl-wasm built without its `webgpu` feature,
// so no wgpu or CubeCL code) against the full module, both under Node in one process:
// - the same files give bit-identical vectors and fine-tune losses on the CPU path, for the
//   golden model in f16 and int8 (its int8 compute) and each tiny family fixture;
// - `auto` is the CPU, `webgpu` is refused with a message naming the module that has it;
// - it is a third of the full module's bytes or less (printed);
// - in Chromium the demo with `device=cpu` downloads the CPU-only module and not the full one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import initFull, { Encoder as FullEncoder } from "../pkg/iftcl_wasm.js";
import initCpu, { Encoder as CpuEncoder } from "../pkg/iftcl_wasm_cpu.js";
import { web, golden, modelFiles, tinyDir, convertedModel, NOTES, serveDemo } from "./common.mjs";
import { bundleFigures, openDemo } from "./responsive.mjs";

await initFull({ module_or_path: readFileSync(path.join(web, "pkg/iftcl_wasm_bg.wasm")) });
await initCpu({ module_or_path: readFileSync(path.join(web, "pkg/iftcl_wasm_cpu_bg.wasm")) });

const bits = (vectors) => vectors.map((v) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length)));

test("the CPU-only module gives the full module's CPU vectors bit for bit", async () => {
  // The int8 file computes in int8 (wasm SIMD) in both.
  const cases = [["all-MiniLM-L6-v2 f16", convertedModel("f16"), golden.sentences], ["all-MiniLM-L6-v2 int8", convertedModel("int8"), golden.sentences]];
  for (const family of ["roberta", "xlm-roberta", "mpnet", "bert-cls-normalize"]) {
    const reference = JSON.parse(readFileSync(path.join(tinyDir, `${family}.json`), "utf8"));
    cases.push([`tiny ${family}`, path.join(tinyDir, family), reference.sentences]);
  }
  for (const [name, dir, sentences] of cases) {
    const files = modelFiles(dir);
    const full = await FullEncoder.load(files, { device: "cpu" });
    const cpu = await CpuEncoder.load(files, { device: "cpu" });
    assert.equal(cpu.device, "cpu");
    assert.equal(cpu.compute, full.compute, `${name}: compute`);
    assert.deepEqual(bits(await cpu.embed(sentences)), bits(await full.embed(sentences)), `${name}: the two modules' vectors differ`);
    full.free();
    cpu.free();
  }
});

test("fine-tuning in the CPU-only module takes the full module's steps exactly", async () => {
  const files = modelFiles(path.join(tinyDir, "roberta"));
  const full = await FullEncoder.load(files, { device: "cpu" });
  const cpu = await CpuEncoder.load(files, { device: "cpu" });
  const options = { steps: 3, batchSize: 4, seed: 11 };
  const [a, b] = [await full.fineTune(NOTES, options), await cpu.fineTune(NOTES, options)];
  assert.deepEqual(Array.from(b), Array.from(a), `losses: full ${a}, cpu-only ${b}`);
  assert.deepEqual(bits(await cpu.embed(NOTES)), bits(await full.embed(NOTES)));
  // The fused WGSL loss is not in this module: asking for it is the CPU backend's refusal.
  const fresh = await CpuEncoder.load(files, { device: "cpu" });
  await assert.rejects(fresh.fineTune(NOTES, { steps: 1, fusedLoss: "on" }), /fused-loss on needs a wgpu device/);
});

test("auto is the CPU; webgpu is refused by naming the full module", async () => {
  const files = modelFiles(path.join(tinyDir, "mpnet"));
  const auto = await CpuEncoder.load(files, { device: "auto" });
  assert.equal(auto.device, "cpu");
  await assert.rejects(CpuEncoder.load(files, { device: "webgpu" }), /no WebGPU device: this is iftcl's CPU-only module \(iftcl_wasm_cpu\.js\), which has no WebGPU code; the full module \(iftcl_wasm\.js\) has it/);
  await assert.rejects(CpuEncoder.load(files, { device: "tpu" }), /not auto, webgpu or cpu/);
});

test("the CPU-only module is at most a third of the full module's bytes", () => {
  const full = bundleFigures(path.join(web, "pkg"));
  const cpu = bundleFigures(path.join(web, "pkg"), "iftcl_wasm_cpu_bg.wasm");
  console.log(`iftcl_wasm_bg.wasm ${JSON.stringify(full)}; iftcl_wasm_cpu_bg.wasm ${JSON.stringify(cpu)}`);
  assert.ok(cpu.raw_mb * 3 <= full.raw_mb, `CPU-only ${cpu.raw_mb} MB vs full ${full.raw_mb} MB`);
});

test("in Chromium the demo on the CPU downloads the CPU-only module only", { timeout: 300_000 }, async () => {
  const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium (or set CHROMIUM)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"], headless: true });
  const site = await serveDemo();
  try {
    for (const query of ["device=cpu", "device=cpu&thread=page"]) {
      site.requests.length = 0;
      const { page, state } = await openDemo(browser, site.port, query);
      assert.equal(state.device, "cpu");
      const wasm = site.requests.filter((r) => r.endsWith(".wasm"));
      assert.deepEqual(wasm, ["/pkg/iftcl_wasm_cpu_bg.wasm"], `${query}: the page fetched ${wasm.join(", ")}`);
      await page.context().close();
    }
  } finally {
    await browser.close();
    site.server.close();
  }
});
