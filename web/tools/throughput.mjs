// Sentences per second of the CPU-only module under Node (no page, no worker): the 1,000 STS-B
// dev sentences embedded in one call, 3 times per weight file, after a warm-up, for a build's
// web/pkg folder. Run it for two builds in turn (alternating) to compare them.
// Usage: node tools/throughput.mjs [PKG] [DTYPES]
//   PKG: a folder holding iftcl_wasm_cpu.js and iftcl_wasm_cpu_bg.wasm (default web/pkg)
//   DTYPES: weight files, comma-separated (default f16,int8; written by the native `iftcl
//   convert`, see tests/common.mjs)
import path from "node:path";
import { web, cpuModule, modelFiles, convertedModel, stsbDev } from "../tests/common.mjs";

const pkg = path.resolve(process.argv[2] || path.join(web, "pkg"));
const dtypes = (process.argv[3] || "f16,int8").split(",");
const { Encoder } = await cpuModule(pkg);
const sentences = stsbDev(1000);
const encoders = [];
for (const dtype of dtypes) {
  const encoder = await Encoder.load(modelFiles(convertedModel(dtype)), { device: "cpu" });
  await encoder.embed(sentences.slice(0, 128));
  encoders.push([dtype, encoder]);
}
for (let round = 1; round <= 3; round++) {
  for (const [dtype, encoder] of encoders) {
    const t0 = performance.now();
    await encoder.embed(sentences);
    const perSecond = sentences.length / ((performance.now() - t0) / 1000);
    console.log(`${pkg} ${dtype} (compute ${encoder.compute}) round ${round}: ${perSecond.toFixed(1)} sentences/s`);
  }
}
