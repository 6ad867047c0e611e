// Where the CPU-only module spends an embedding: V8's sampling profiler (node:inspector) over
// one call embedding the 1,000 STS-B dev sentences, after a warm-up, and the functions with the
// most self time, in percent of the samples. Function names come from the module's name
// section: build with `WASM_KEEP_NAMES=1 scripts/build-wasm.sh` (same code, names kept).
// Usage: node tools/hot-functions.mjs [PKG] [DTYPE] [TOP]
//   PKG: a folder holding iftcl_wasm_cpu.js and iftcl_wasm_cpu_bg.wasm (default web/pkg)
//   DTYPE: the weight file, f16 (default), int8, bf16 or f32 (see tests/common.mjs)
//   TOP: how many functions to print (default 15)
import { Session } from "node:inspector/promises";
import path from "node:path";
import { web, cpuModule, modelFiles, modelDir, convertedModel, stsbDev } from "../tests/common.mjs";

const pkg = path.resolve(process.argv[2] || path.join(web, "pkg"));
const dtype = process.argv[3] || "f16";
const top = Number(process.argv[4] || 15);
const { Encoder } = await cpuModule(pkg);
const sentences = stsbDev(1000);
const encoder = await Encoder.load(modelFiles(dtype === "f32" ? modelDir : convertedModel(dtype)), { device: "cpu" });
await encoder.embed(sentences.slice(0, 128));

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 200 });
await session.post("Profiler.start");
const t0 = performance.now();
await encoder.embed(sentences);
const seconds = (performance.now() - t0) / 1000;
const { profile } = await session.post("Profiler.stop");
session.disconnect();

const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName || "(anonymous)"]));
const self = new Map();
for (const id of profile.samples) {
  const name = byNode.get(id);
  self.set(name, (self.get(name) || 0) + 1);
}
const total = profile.samples.length;
const named = [...self.keys()].some((n) => /::/.test(n));
console.log(`${pkg}, ${dtype} file (compute ${encoder.compute}): ${(sentences.length / seconds).toFixed(1)} sentences/s while profiled, ${total} samples`);
if (!named) console.log("(no Rust names: build with WASM_KEEP_NAMES=1 scripts/build-wasm.sh)");
for (const [name, n] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${name.replace(/::h[0-9a-f]{16}$/, "").slice(0, 120)}`);
}
