// The notes app end to end in a real WebKitGTK window: the release binary started under Xvfb,
// driven through tauri-driver and WebKitWebDriver (selenium-webdriver). Checks the golden pair's
// similarity shown, a search over a handful of notes, a 2-step fine-tune's progress and finite
// losses, and the notes still there after the app restarts. Prints the time of one search and
// of one fine-tune step; saves a screenshot in web/test-results/.
//
// Needs: the app built (`cargo build --release --workspace`, after `npm run build` here), Xvfb,
// WebKitWebDriver (Debian: xvfb, webkit2gtk-driver), tauri-driver (`scripts/install-tools.sh
// tauri-driver` prints its path; TAURI_DRIVER, default $IFTCL_TOOLS/bin/tauri-driver).
// Inputs: IFTCL_MODEL, IFTCL_GOLDEN, CARGO_TARGET_DIR (where the app is).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Builder, By, until } from "selenium-webdriver";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/iftcl-target");
const app = path.join(targetDir, "release/iftcl-notes");
const model = process.env.IFTCL_MODEL || path.join(root, "models/all-MiniLM-L6-v2");
const golden = JSON.parse(readFileSync(process.env.IFTCL_GOLDEN || path.join(root, "../shared/golden/all-MiniLM-L6-v2.json"), "utf8"));
const results = path.join(root, "web/test-results");
const tauriDriver = process.env.TAURI_DRIVER || path.join(process.env.IFTCL_TOOLS || path.join(os.homedir(), ".cache/iftcl-tools"), "bin/tauri-driver");
const port = 4444 + (process.pid % 500) * 2;

const NOTES = [
  "My cat sleeps on the sofa all afternoon.",
  "Stock markets fell sharply after the announcement.",
  "Boil the pasta for ten minutes, then add the tomato sauce.",
  "Heavy rain and strong wind are expected this weekend.",
  "The train to Lyon leaves at seven from platform four.",
];

let xvfb;
let driver;
const dataHome = mkdtempSync(path.join(os.tmpdir(), "iftcl-notes-data-"));

function startXvfb() {
  return new Promise((resolve, reject) => {
    const p = spawn("Xvfb", ["-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], { stdio: ["ignore", "ignore", "pipe", "pipe"] });
    let out = "";
    p.stdio[3].on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve({ p, display: `:${out.trim()}` });
    });
    p.on("error", (e) => reject(new Error(`Xvfb: ${e.message} (apt-get install xvfb)`)));
    p.on("exit", (code) => reject(new Error(`Xvfb exited with ${code}`)));
  });
}

before(async () => {
  assert.ok(existsSync(app), `${app} not built: npm run build here, then cargo build --release --workspace`);
  assert.ok(existsSync(tauriDriver), `${tauriDriver} missing: scripts/install-tools.sh tauri-driver (or set TAURI_DRIVER)`);
  assert.ok(existsSync(model), `model not found at ${model} (IFTCL_MODEL)`);
  mkdirSync(results, { recursive: true });
  xvfb = await startXvfb();
  const env = { ...process.env, DISPLAY: xvfb.display, XDG_DATA_HOME: dataHome, IFTCL_MODEL: model, RUST_LOG: "warn" };
  // Software rendering: no GPU and no DRM device on CI machines.
  env.WEBKIT_DISABLE_DMABUF_RENDERER = "1";
  env.LIBGL_ALWAYS_SOFTWARE = "1";
  driver = spawn(tauriDriver, ["--port", String(port), "--native-port", String(port + 1)], { env, stdio: ["ignore", "inherit", "inherit"] });
  await driverListening(driver, port);
});

/// Resolves once something accepts connections on 127.0.0.1:`port` (polled every 50 ms), and
/// rejects if `child` exits first or nothing listens within 30 s.
async function driverListening(child, port) {
  let exited = null;
  child.once("exit", (code, signal) => (exited = `exited with ${code ?? signal}`));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`tauri-driver ${exited} before listening on port ${port}`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => socket.end(() => resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`tauri-driver is not listening on port ${port} after 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

after(() => {
  driver?.kill();
  xvfb?.p.kill();
});

async function session() {
  const s = await new Builder()
    .usingServer(`http://127.0.0.1:${port}/`)
    .withCapabilities({ browserName: "wry", "tauri:options": { application: app } })
    .build();
  await s.manage().setTimeouts({ implicit: 0, script: 120000 });
  return s;
}

const text = (s, id) => s.findElement(By.id(id)).getText();

async function waitLoaded(s) {
  await s.wait(async () => (await text(s, "device")) !== "no model yet" || (await text(s, "status")).startsWith("model") || (await s.findElement(By.id("status")).getAttribute("class")).includes("error"), 60000, "the model did not load");
  const status = await text(s, "status");
  assert.ok(!(await s.findElement(By.id("status")).getAttribute("class")).includes("error"), `load failed: ${status}`);
  return status;
}

async function fill(s, id, value) {
  const el = s.findElement(By.id(id));
  await el.clear();
  await el.sendKeys(value);
}

test("the notes app in a real window: similarity, search, fine-tune, restart", { timeout: 600000 }, async () => {
  let s = await session();
  try {
    const status = await waitLoaded(s);
    const device = await text(s, "device");
    console.log(`# app loaded: ${status} (device: ${device})`);
    assert.match(device, /cpu|wgpu/);

    // The golden pair's similarity, as the page shows it.
    await fill(s, "sim-a", golden.sentences[0]);
    await fill(s, "sim-b", golden.sentences[1]);
    await s.findElement(By.id("compare")).click();
    await s.wait(async () => (await text(s, "similarity")) !== "", 60000);
    const shown = Number(await text(s, "similarity"));
    console.log(`# similarity shown ${shown}, golden ${golden.cosine_0_1}`);
    assert.ok(Math.abs(shown - golden.cosine_0_1) < 1e-3, `shown ${shown}, golden ${golden.cosine_0_1}`);

    // A handful of notes, then a search by meaning.
    for (const [i, note] of NOTES.entries()) {
      await fill(s, "note-text", note);
      await s.findElement(By.id("add-note")).click();
      await s.wait(async () => (await s.findElements(By.css("#notes li"))).length === i + 1, 60000, `note ${i} not added: ${await text(s, "status")}`);
    }
    const search = async (query) => {
      await fill(s, "query", query);
      await s.executeScript("document.getElementById('results').replaceChildren()");
      await s.findElement(By.id("search")).click();
      await s.wait(until.elementLocated(By.css("#results li")), 60000);
      const first = await s.findElement(By.css("#results li")).getText();
      return { first, ms: await text(s, "search-time") };
    };
    const kitten = await search("a kitten napping on the couch");
    console.log(`# search "a kitten napping on the couch": first "${kitten.first}" in ${kitten.ms}`);
    assert.ok(kitten.first.includes(NOTES[0]), kitten.first);
    const cooking = await search("how do I cook dinner");
    assert.ok(cooking.first.includes(NOTES[2]), cooking.first);

    // A 2-step fine-tune on the notes: progress, finite losses.
    await fill(s, "steps", "2");
    await s.findElement(By.id("tune")).click();
    await s.wait(async () => (await text(s, "tune-status")).startsWith("done") || (await s.findElement(By.id("tune-status")).getAttribute("class")).includes("error"), 300000);
    const tuneStatus = await text(s, "tune-status");
    console.log(`# fine-tune: ${tuneStatus}`);
    assert.ok(tuneStatus.startsWith("done"), tuneStatus);
    const steps = await s.findElements(By.css("#tune-log li.step"));
    assert.equal(steps.length, 2);
    for (const li of steps) assert.ok(Number.isFinite(Number(await li.getAttribute("data-loss"))), await li.getText());
    assert.equal(Number(await s.findElement(By.id("progress")).getAttribute("value")), 1);

    const after = await search("a kitten napping on the couch");
    assert.ok(after.first.includes(NOTES[0]), after.first);
    const shot = path.join(results, "tauri-notes.png");
    writeFileSync(shot, Buffer.from(await s.takeScreenshot(), "base64"));
    console.log(`# screenshot: ${shot}`);
  } finally {
    await s.quit();
  }

  // Restart: the notes are still there (the index file in the app's data folder), embedded
  // again for the untuned model the app opens with.
  s = await session();
  try {
    const status = await waitLoaded(s);
    console.log(`# after restart: ${status}`);
    const notes = await s.findElements(By.css("#notes li"));
    assert.equal(notes.length, NOTES.length, status);
    assert.match(status, /embedded again/);
    await fill(s, "query", "stock prices dropped");
    await s.findElement(By.id("search")).click();
    await s.wait(until.elementLocated(By.css("#results li")), 60000);
    assert.ok((await s.findElement(By.css("#results li")).getText()).includes(NOTES[1]));
  } finally {
    await s.quit();
  }
});
