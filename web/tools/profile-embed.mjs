// Where the CPU path's time goes, under Node (the same V8 as Chromium, no page around it):
// the phases of a first embedding (module compile, Encoder.load, one sentence) for the model's
// weight files in each precision, with the functions of most self time during the loads
// (grouped by crate), then 256 STS-B dev sentences under V8's sampling profiler, with the
// functions of most self time.
// Reads Cargo's output of the last scripts/build-wasm.sh (it keeps the function names that
// web/pkg drops) and runs wasm-bindgen on it into a temporary folder.
// Usage: node tools/profile-embed.mjs [WASM] [--dtypes f32,f16,int8] [--runs N]
//   WASM: another build's Cargo output (iftcl_wasm.wasm), to profile it the same way (a build
//   whose Encoder.load takes bytes only works: the files are passed as bytes).
//   (CARGO_TARGET_DIR_WASM, IFTCL_MODEL as for the tests; the f16 and int8 files are written
//   by the native `iftcl convert`, see tests/common.mjs.)
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Session } from "node:inspector/promises";
import os from "node:os";
import path from "node:path";
import { web, modelDir, modelFiles, stsbDev, convertedModel } from "../tests/common.mjs";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : fallback;
};
const dtypes = flag("--dtypes", "f32,f16,int8").split(",");
const runs = Number(flag("--runs", "3"));
const target = process.env.CARGO_TARGET_DIR_WASM || path.join(os.homedir(), ".cache/iftcl-wasm-target");
const wasm = args[0] || path.join(target, "wasm32-unknown-unknown/wasm/iftcl_wasm.wasm");
const dir = mkdtempSync(path.join(os.tmpdir(), "iftcl-profile-"));

/// The crate a Rust symbol (legacy mangling, as the name section holds it) belongs to.
function crateOf(name) {
  const m = /^_ZN(\d+)(.*)/.exec(name);
  if (!m) return name.startsWith("js-to-wasm") || name.startsWith("wasm-to-js") ? "(JS glue)" : name || "(anonymous)";
  const first = m[2].slice(0, Number(m[1]));
  // An impl block: `<tokenizers::..::X as Trait>::f` is mangled `_$LT$tokenizers..`.
  const inner = /^_\$LT\$([A-Za-z0-9_]+)/.exec(first);
  return inner ? inner[1] : first;
}

/// Self time (ms) per function and per crate of a V8 CPU profile.
function selfTimes(profile) {
  const byName = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const name = byId.get(id).callFrame.functionName || "(anonymous)";
    byName.set(name, (byName.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const byCrate = new Map();
  for (const [name, ms] of byName) byCrate.set(crateOf(name), (byCrate.get(crateOf(name)) ?? 0) + ms);
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { byName: sorted(byName), byCrate: sorted(byCrate), total: [...byName.values()].reduce((a, b) => a + b, 0) };
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

try {
  execFileSync("wasm-bindgen", ["--target", "web", "--out-dir", dir, wasm]);
  for (const f of ["inline.js", "simd.js"]) copyFileSync(path.join(web, "lib", f), path.join(dir, f));
  const { default: init, Encoder } = await import(path.join(dir, "inline.js"));
  const ms = (t) => Math.round(performance.now() - t);
  let t = performance.now();
  await init({ module_or_path: readFileSync(path.join(dir, "iftcl_wasm_bg.wasm")) });
  console.log(`module compile + instantiate: ${ms(t)} ms (${wasm})`);

  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  for (const dtype of dtypes) {
    const folder = dtype === "f32" ? modelDir : convertedModel(dtype);
    const files = modelFiles(folder);
    const loads = [];
    const firsts = [];
    await session.post("Profiler.start");
    for (let r = 0; r < runs; r++) {
      t = performance.now();
      const encoder = await Encoder.load(files, { device: "cpu" });
      loads.push(performance.now() - t);
      t = performance.now();
      await encoder.embed(["A man is playing a guitar."]);
      firsts.push(performance.now() - t);
      encoder.free();
    }
    const { profile } = await session.post("Profiler.stop");
    const { byName, byCrate, total } = selfTimes(profile);
    const mb = (files.weights.length / 1e6).toFixed(1);
    console.log(`\n${dtype} (${mb} MB of weights, in memory): Encoder.load ${loads.map(Math.round).join(", ")} ms (median ${Math.round(median(loads))}), then one sentence ${firsts.map(Math.round).join(", ")} ms`);
    console.log(`  self time during the ${runs} loads and first sentences, ${Math.round(total)} ms in all, by crate:`);
    for (const [name, v] of byCrate.slice(0, 8)) console.log(`  ${v.toFixed(0).padStart(6)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${name}`);
    console.log("  by function:");
    for (const [name, v] of byName.slice(0, 8)) console.log(`  ${v.toFixed(0).padStart(6)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 110)}`);
  }

  const encoder = await Encoder.load(modelFiles(), { device: "cpu" });
  await encoder.embed(["warm-up"]);
  await session.post("Profiler.start");
  const texts = stsbDev(256);
  t = performance.now();
  await encoder.embed(texts);
  const seconds = (performance.now() - t) / 1000;
  const { profile } = await session.post("Profiler.stop");
  console.log(`\n${texts.length} STS-B dev sentences: ${(texts.length / seconds).toFixed(1)} sentences/s`);
  const { byName, total } = selfTimes(profile);
  for (const [name, v] of byName.slice(0, 12)) {
    console.log(`${v.toFixed(0).padStart(6)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 120)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
