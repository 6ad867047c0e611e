// The notes app end to end in a real WebKitGTK window: the release binary started under Xvfb,
// driven through tauri-driver and WebKitWebDriver (selenium-webdriver). Checks the golden pair's
// similarity shown (its 4-digit string), two searches over five notes (every note in the order
// and with the scores of the library's CPU cosines, `iftcl similarity`), a 2-step fine-tune's
// progress rows ("1/2", "2/2") and finite losses, scores that moved after it, and the notes
// still there after the app restarts, ranked as the library ranks them. Prints the time of each
// search and of one fine-tune step; saves a screenshot in web/test-results/.
//
// Needs: the app built (`cargo build --release --workspace`, after `npm run build` here), Xvfb,
// WebKitWebDriver (Debian: xvfb, webkit2gtk-driver), tauri-driver (`scripts/install-tools.sh
// tauri-driver` prints its path; TAURI_DRIVER, default $IFTCL_TOOLS/bin/tauri-driver).
// Inputs: IFTCL_MODEL, IFTCL_GOLDEN, CARGO_TARGET_DIR (where the app is).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Builder, By } from "selenium-webdriver";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/iftcl-target");
const app = path.join(targetDir, "release/iftcl-notes");
const iftcl = path.join(targetDir, "release/iftcl");
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

/// Waits until the model is loaded and the notes list shows `notes` notes (the app fills it in
/// after the model, so the device alone does not say the page is ready), or the status is an
/// error.
async function waitLoaded(s, notes = 0) {
  const failed = async () => (await s.findElement(By.id("status")).getAttribute("class")).includes("error");
  const ready = async () => (await text(s, "device")) !== "no model yet" && (await text(s, "status")).includes(`; ${notes} notes.`) && (await s.findElements(By.css("#notes li"))).length === notes;
  await s.wait(async () => (await ready()) || (await failed()), 60000, `the model and ${notes} notes did not load: ${await text(s, "status")}`);
  const status = await text(s, "status");
  assert.ok(!(await s.findElement(By.id("status")).getAttribute("class")).includes("error"), `load failed: ${status}`);
  return status;
}

/// The library's cosine of `query` to each note on the CPU (the native `iftcl similarity` of the
/// same build and model): the scores the app's search must show, and their order.
function libraryScores(query) {
  const out = JSON.parse(execFileSync(iftcl, ["similarity", "--device", "cpu", "--model", model, "--json", query, ...NOTES], { env: { ...process.env, RUST_LOG: "error" } }).toString());
  return NOTES.map((note, i) => ({ note, score: out.matrix[0][i + 1] })).sort((a, b) => b.score - a.score);
}

/// The search results as the page lists them: [{ note, score }] in order.
async function searchResults(s) {
  const out = [];
  for (const li of await s.findElements(By.css("#results li"))) {
    const score = await li.findElement(By.css(".score")).getText();
    const whole = await li.getText();
    out.push({ note: whole.slice(score.length).trim(), score: Number(score) });
  }
  return out;
}

/// Every note in the library's order, each score within 1e-3 of the library's (the page shows
/// four digits).
function assertSameRanking(got, want, label) {
  assert.deepEqual(got.map((h) => h.note), want.map((h) => h.note), `${label}: order`);
  got.forEach((h, i) => assert.ok(Math.abs(h.score - want[i].score) <= 1e-3, `${label}: "${h.note}" scored ${h.score}, the library ${want[i].score}`));
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
    const shown = await text(s, "similarity");
    console.log(`# similarity shown ${shown}, golden ${golden.cosine_0_1}`);
    assert.equal(shown, golden.cosine_0_1.toFixed(4), `shown ${shown}, golden ${golden.cosine_0_1}`);

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
      await s.wait(async () => (await s.findElements(By.css("#results li"))).length === NOTES.length, 60000, `no ${NOTES.length} results: ${await text(s, "status")}`);
      return { hits: await searchResults(s), ms: await text(s, "search-time") };
    };
    const queries = ["a kitten napping on the couch", "how do I cook dinner"];
    const untuned = [];
    for (const query of queries) {
      const { hits, ms } = await search(query);
      console.log(`# search "${query}" in ${ms}: ${hits.map((h) => `${h.score} ${h.note}`).join(" | ")}`);
      assertSameRanking(hits, libraryScores(query), `search "${query}"`);
      untuned.push(hits);
    }
    assert.equal(untuned[0][0].note, NOTES[0]);
    assert.equal(untuned[1][0].note, NOTES[2]);

    // A 2-step fine-tune on the notes: progress, finite losses.
    await fill(s, "steps", "2");
    await s.findElement(By.id("tune")).click();
    await s.wait(async () => (await text(s, "tune-status")).startsWith("done") || (await s.findElement(By.id("tune-status")).getAttribute("class")).includes("error"), 300000);
    const tuneStatus = await text(s, "tune-status");
    console.log(`# fine-tune: ${tuneStatus}`);
    assert.ok(tuneStatus.startsWith("done"), tuneStatus);
    const steps = await s.findElements(By.css("#tune-log li.step"));
    const rows = [];
    for (const li of steps) {
      rows.push(await li.getText());
      assert.ok(Number.isFinite(Number(await li.getAttribute("data-loss"))), await li.getText());
    }
    assert.deepEqual(rows.map((r) => /^step ([0-9]+\/[0-9]+): loss /.exec(r)?.[1]), ["1/2", "2/2"], JSON.stringify(rows));
    assert.equal(Number(await s.findElement(By.id("progress")).getAttribute("value")), 1);

    // The tuned model scores the notes differently from the untuned one (the page's four
    // digits), and still finds the cat first.
    const after = (await search(queries[0])).hits;
    console.log(`# after the fine-tune: ${after.map((h) => `${h.score} ${h.note}`).join(" | ")}`);
    const moved = after.filter((h) => h.score !== untuned[0].find((u) => u.note === h.note).score);
    assert.ok(moved.length > 0, `the fine-tune left every score as it was: ${JSON.stringify(after)}`);
    assert.equal(after[0].note, NOTES[0]);
    // The screenshot is a picture for people, not a check: WebKitWebDriver's screenshot under
    // Xvfb has hung here on a loaded machine (3 runs of 5 on the 2-vCPU VM), so it gets 60 s.
    const shot = path.join(results, "tauri-notes.png");
    const png = await Promise.race([s.takeScreenshot(), new Promise((r) => setTimeout(() => r(null), 60_000).unref())]);
    if (png) writeFileSync(shot, Buffer.from(png, "base64"));
    console.log(png ? `# screenshot: ${shot}` : "# no screenshot: WebKitWebDriver did not answer within 60 s");
  } finally {
    await s.quit();
  }

  // Restart: the notes are still there (the index file in the app's data folder), embedded
  // again for the untuned model the app opens with.
  s = await session();
  try {
    const status = await waitLoaded(s, NOTES.length);
    console.log(`# after restart: ${status}`);
    const notes = await s.findElements(By.css("#notes li"));
    assert.equal(notes.length, NOTES.length, status);
    assert.match(status, /embedded again/);
    // The untuned model again: the library's ranking and scores.
    const query = "stock prices dropped";
    await fill(s, "query", query);
    await s.findElement(By.id("search")).click();
    await s.wait(async () => (await s.findElements(By.css("#results li"))).length === NOTES.length, 60000);
    const hits = await searchResults(s);
    assertSameRanking(hits, libraryScores(query), `after the restart, search "${query}"`);
    assert.equal(hits[0].note, NOTES[1]);
  } finally {
    await s.quit();
  }
});
