// Whether the page stays responsive while the encoder works: a requestAnimationFrame loop
// counts the frames the page paints during a call, with the longest gap between two frames,
// and the Long Tasks API reports the longest task on the page's thread. A page whose thread
// runs the encoder paints nothing until the call returns; one whose encoder is in a worker
// keeps painting.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

/**
 * Runs `window.iftclEncoder.embed(texts)` in `page` under the frame probe. Resolves to
 * { count, seconds, frames, longestGapMs, longestTaskMs } (longestTaskMs: 0 when no task took
 * 50 ms or more, the Long Tasks API's threshold).
 */
export function embedUnderFrameProbe(page, texts) {
  return page.evaluate(async (texts) => {
    const tasks = [];
    const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries().map((e) => e.duration)));
    observer.observe({ type: "longtask" });
    await new Promise((resolve) => requestAnimationFrame(resolve));
    let frames = 0;
    let running = true;
    let last = performance.now();
    let longestGap = 0;
    const tick = (t) => {
      frames++;
      longestGap = Math.max(longestGap, t - last);
      last = t;
      if (running) requestAnimationFrame(tick);
    };
    const t0 = performance.now();
    last = t0;
    requestAnimationFrame(tick);
    const out = await window.iftclEncoder.embed(texts);
    running = false;
    const end = performance.now();
    longestGap = Math.max(longestGap, end - last);
    // Long-task entries arrive after the task: give them a turn, then take what is queued.
    await new Promise((resolve) => setTimeout(resolve, 100));
    tasks.push(...observer.takeRecords().map((e) => e.duration));
    observer.disconnect();
    return { count: out.length, seconds: (end - t0) / 1000, frames, longestGapMs: longestGap, longestTaskMs: Math.max(0, ...tasks) };
  }, texts);
}

/** The demo page at `query`, ready (or failed: the test's assertion says why). */
export async function openDemo(browser, port, query) {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(300_000);
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`http://127.0.0.1:${port}/?${query}`);
  await page.waitForFunction(() => window.iftclDemo.ready || window.iftclDemo.error, null, { timeout: 300_000 });
  const state = await page.evaluate(() => ({ ...window.iftclDemo }));
  assert.equal(state.error, null, `${query}: ${state.error}\n${logs.join("\n")}`);
  return { page, state };
}

/**
 * Figures of one build and thread, printed and returned: time to first embedding (from the
 * start of navigation), then `sentences` embedded under the frame probe.
 */
export async function figures(browser, label, port, query, sentences) {
  const { page, state } = await openDemo(browser, port, query);
  const probe = await embedUnderFrameProbe(page, sentences);
  await page.close();
  assert.equal(probe.count, sentences.length);
  const out = {
    build: label,
    first_embedding_s: +(state.firstEmbedMs / 1000).toFixed(2),
    stsb_dev_sentences_per_s: +(sentences.length / probe.seconds).toFixed(1),
    longest_main_thread_task_ms: Math.round(probe.longestTaskMs),
    frames_painted: probe.frames,
    longest_frame_gap_ms: Math.round(probe.longestGapMs),
    embed_s: +probe.seconds.toFixed(2),
  };
  console.log(`figures (2-vCPU machine, headless Chromium, CPU path, ${sentences.length} STS-B dev sentences): ${JSON.stringify(out)}`);
  return out;
}

/** The bundle's size in MB, raw and gzipped (level 9). */
export function bundleFigures(pkg, file = "iftcl_wasm_bg.wasm") {
  const wasm = readFileSync(path.join(pkg, file));
  return { raw_mb: +(wasm.length / 1e6).toFixed(1), gzip9_mb: +(gzipSync(wasm, { level: 9 }).length / 1e6).toFixed(1) };
}
