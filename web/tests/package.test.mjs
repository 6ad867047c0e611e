// The npm package as an app gets it: `npm pack web/pkg`, the tarball installed into an empty
// app folder, then (1) a Node script of that app imports "iftcl/inline", (2) a page of that
// app, served with its node_modules, imports "iftcl" through an import map and loads the
// .wasm from a URL of its own choosing, and (3) the same app built by Vite (`vite build`, the
// package README's set-up) runs from its dist/; all embed the golden pair (similarity 0.7674).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { web, golden, modelDir, serveDemo } from "./common.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const pkg = JSON.parse(readFileSync(path.join(web, "pkg/package.json"), "utf8"));
const tmp = mkdtempSync(path.join(os.tmpdir(), "iftcl-pack-"));
const app = path.join(tmp, "app");
let packed;

before(() => {
  const [report] = JSON.parse(execFileSync("npm", ["pack", path.join(web, "pkg"), "--pack-destination", tmp, "--json", "--silent"], { encoding: "utf8" }));
  packed = report;
  mkdirSync(app);
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  execFileSync("npm", ["install", path.join(tmp, report.filename), "--no-audit", "--no-fund", "--silent"], { cwd: app });
});

test("npm pack: name, version, entry points and files", () => {
  assert.equal(packed.name, "iftcl");
  const cargo = readFileSync(path.join(web, "../Cargo.toml"), "utf8");
  assert.equal(packed.version, /\[workspace\.package\][^[]*?version = "([^"]+)"/.exec(cargo)[1]);
  const files = packed.files.map((f) => f.path).sort();
  assert.deepEqual(files, ["README.md", "iftcl_wasm.d.ts", "iftcl_wasm.js", "iftcl_wasm_bg.wasm", "iftcl_wasm_bg.wasm.d.ts", "iftcl_wasm_cpu.d.ts", "iftcl_wasm_cpu.js", "iftcl_wasm_cpu_bg.wasm", "iftcl_wasm_cpu_bg.wasm.d.ts", "index.d.ts", "index.js", "inline-cpu.d.ts", "inline-cpu.js", "inline.d.ts", "inline.js", "package.json", "simd.js", "worker-core.js", "worker-cpu.js", "worker.js"]);
  const installed = JSON.parse(readFileSync(path.join(app, "node_modules/iftcl/package.json"), "utf8"));
  assert.deepEqual(installed.exports["."], { types: "./index.d.ts", default: "./index.js" });
  assert.equal(installed.types, "./index.d.ts");
  assert.equal(installed.sideEffects, false);
  console.log(`npm pack: ${packed.filename}, ${(packed.size / 1e6).toFixed(1)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(1)} MB unpacked, ${files.length} files`);
  assert.equal(pkg.version, packed.version);
});

test("a Node script of the app imports iftcl/inline and embeds the golden pair", () => {
  writeFileSync(
    path.join(app, "similarity.mjs"),
    `import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import init, { Encoder } from "iftcl/inline";
const [model, a, b] = process.argv.slice(2);
await init({ module_or_path: readFileSync(fileURLToPath(import.meta.resolve("iftcl/iftcl_wasm_bg.wasm"))) });
const read = (f) => readFileSync(model + "/" + f);
const encoder = await Encoder.load({ config: read("config.json"), weights: read("model.safetensors"), tokenizer: read("tokenizer.json"), pooling: read("1_Pooling/config.json") }, { device: "cpu" });
console.log(await encoder.similarity(a, b));
`,
  );
  const out = execFileSync("node", ["similarity.mjs", modelDir, golden.sentences[0], golden.sentences[1]], { cwd: app, encoding: "utf8" });
  const s = Number(out.trim());
  assert.ok(Math.abs(s - golden.cosine_0_1) < 1e-3, `Node app: similarity ${out.trim()}, golden ${golden.cosine_0_1}`);
});

let site;
after(() => {
  site?.server.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Opens `url` in headless Chromium (CPU path) and resolves to the page's `window.result`. */
async function pageResult(url) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"], headless: true });
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.result, null, { timeout: 300_000 });
    return await page.evaluate(() => window.result);
  } finally {
    await browser.close();
  }
}

const LOAD = `{ config: "/model/config.json", weights: "/model/model.safetensors", tokenizer: "/model/tokenizer.json", pooling: "/model/1_Pooling/config.json" }`;
const pair = new URLSearchParams({ a: golden.sentences[0], b: golden.sentences[1] });

function checkPair(what, result) {
  assert.equal(result.error, undefined, `${what}: ${result.error}`);
  assert.equal(result.device, "cpu");
  assert.ok(Math.abs(result.similarity - golden.cosine_0_1) < 1e-3, `${what}: similarity ${result.similarity}, golden ${golden.cosine_0_1}`);
  console.log(`${what}: similarity ${result.similarity.toFixed(4)} (golden ${golden.cosine_0_1.toFixed(4)}) on ${result.device}`);
}

test("a page of the app imports iftcl, loads the .wasm from its own URL and embeds the golden pair", { timeout: 300_000 }, async () => {
  mkdirSync(path.join(app, "assets"));
  copyFileSync(path.join(app, "node_modules/iftcl/iftcl_wasm_cpu_bg.wasm"), path.join(app, "assets/encoder-1234.wasm"));
  writeFileSync(
    path.join(app, "index.html"),
    `<!doctype html><meta charset="utf-8"><title>app</title>
<script type="importmap">{ "imports": { "iftcl": "/node_modules/iftcl/index.js" } }</script>
<script type="module">
import { Encoder } from "iftcl";
try {
  const encoder = await Encoder.load(${LOAD}, { device: "cpu", cpuWasmUrl: "assets/encoder-1234.wasm" });
  const params = new URLSearchParams(location.search);
  window.result = { device: encoder.device, similarity: await encoder.similarity(params.get("a"), params.get("b")) };
} catch (e) {
  window.result = { error: String(e.message || e) };
}
</script>`,
  );
  site = await serveDemo({ site: app });
  checkPair("packed package in a page", await pageResult(`http://127.0.0.1:${site.port}/?${pair}`));
  const requested = site.requests;
  assert.ok(requested.includes("/assets/encoder-1234.wasm"), `the app's wasm URL was not fetched: ${requested.join(", ")}`);
  assert.ok(!requested.some((r) => r.startsWith("/node_modules/iftcl/") && r.endsWith(".wasm")), `the package's own module was fetched as well: ${requested.join(", ")}`);
  assert.ok(requested.includes("/node_modules/iftcl/worker-cpu.js"), "the CPU worker script was not loaded");
});

test("the app built by Vite (the package README's set-up) embeds the golden pair", { timeout: 300_000 }, async () => {
  const vite = path.join(tmp, "vite");
  mkdirSync(vite);
  writeFileSync(path.join(vite, "vite.config.js"), `// build.target: this app's own top-level await.\nexport default { optimizeDeps: { exclude: ["iftcl"] }, build: { target: "es2022" } };`);
  writeFileSync(path.join(vite, "index.html"), `<!doctype html><meta charset="utf-8"><title>vite app</title><script type="module" src="/main.js"></script>`);
  writeFileSync(
    path.join(vite, "main.js"),
    `import { Encoder } from "iftcl";
import cpuWasmUrl from "iftcl/iftcl_wasm_cpu_bg.wasm?url";
const params = new URLSearchParams(location.search);
try {
  const encoder = await Encoder.load(${LOAD}, { device: "cpu", cpuWasmUrl });
  window.result = { device: encoder.device, similarity: await encoder.similarity(params.get("a"), params.get("b")) };
} catch (e) {
  window.result = { error: String(e.message || e) };
}
`,
  );
  // The app's dependencies are the installed tarball's folder.
  execFileSync("ln", ["-s", path.join(app, "node_modules"), path.join(vite, "node_modules")]);
  const out = execFileSync("node", [path.join(web, "node_modules/vite/bin/vite.js"), "build", "--config", path.join(vite, "vite.config.js"), "--logLevel", "warn"], { cwd: vite, encoding: "utf8" });
  const built = await serveDemo({ site: path.join(vite, "dist") });
  try {
    checkPair("packed package built by Vite", await pageResult(`http://127.0.0.1:${built.port}/?${pair}`));
    // The worker and the .wasm came from Vite's hashed assets.
    assert.ok(built.requests.some((r) => /^\/assets\/worker-[^/]+\.js$/.test(r)), `no bundled worker fetched: ${built.requests.join(", ")} ${out}`);
    assert.ok(built.requests.some((r) => /^\/assets\/iftcl_wasm_cpu_bg-[^/]+\.wasm$/.test(r)), `no hashed .wasm fetched: ${built.requests.join(", ")}`);
  } finally {
    built.server.close();
  }
});
