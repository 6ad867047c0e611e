// Where the CPU path's time goes, under Node (the same V8 as Chromium, no page around it):
// the phases of a first embedding (module compile, Encoder.load, one sentence), then 256
// STS-B dev sentences under V8's sampling profiler, with the functions of most self time.
// Reads Cargo's output of the last scripts/build-wasm.sh (it keeps the function names that
// web/pkg drops) and runs wasm-bindgen on it into a temporary folder.
// Usage: node tools/profile-embed.mjs   (CARGO_TARGET_DIR_WASM, IFTCL_MODEL as for the tests)
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Session } from "node:inspector/promises";
import os from "node:os";
import path from "node:path";
import { web, modelFiles, stsbDev } from "../tests/common.mjs";

const target = process.env.CARGO_TARGET_DIR_WASM || path.join(os.homedir(), ".cache/iftcl-wasm-target");
const dir = mkdtempSync(path.join(os.tmpdir(), "iftcl-profile-"));
try {
  execFileSync("wasm-bindgen", ["--target", "web", "--out-dir", dir, path.join(target, "wasm32-unknown-unknown/wasm/iftcl_wasm.wasm")]);
  for (const f of ["inline.js", "simd.js"]) copyFileSync(path.join(web, "lib", f), path.join(dir, f));
  const { default: init, Encoder } = await import(path.join(dir, "inline.js"));
  const ms = (t) => Math.round(performance.now() - t);
  let t = performance.now();
  await init({ module_or_path: readFileSync(path.join(dir, "iftcl_wasm_bg.wasm")) });
  const phases = { compile_ms: ms(t) };
  const files = modelFiles();
  t = performance.now();
  const encoder = await Encoder.load(files, { device: "cpu" });
  phases.load_ms = ms(t);
  t = performance.now();
  await encoder.embed(["warm-up"]);
  phases.first_sentence_ms = ms(t);
  console.log(`first embedding, by phase (model files already in memory): ${JSON.stringify(phases)}`);

  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  const texts = stsbDev(256);
  t = performance.now();
  await encoder.embed(texts);
  const seconds = (performance.now() - t) / 1000;
  const { profile } = await session.post("Profiler.stop");
  console.log(`${texts.length} STS-B dev sentences: ${(texts.length / seconds).toFixed(1)} sentences/s`);
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const name = byId.get(id).callFrame.functionName || "(anonymous)";
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`${(us / 1000).toFixed(0).padStart(6)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 120)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
