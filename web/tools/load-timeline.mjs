// Where the time to the first embedding goes in Chromium: the demo page (worker mode, CPU path,
// the f16 file) loaded cold ROUNDS times, each in a fresh browser context, printing the first
// embedding (from the start of navigation), the worker's Resource Timing entries of the module
// and the weights (request start, first byte, last byte) and the worker's own marks ("iftcl:
// module ready", "iftcl: encoder loaded"), all on the page's clock.
//
//   node web/tools/load-timeline.mjs [ROUNDS] [PKG]    (default 3; PKG: another build's web/pkg)
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serveDemo } from "../tests/common.mjs";

const rounds = Number(process.argv[2] || 3);
const pkg = process.argv[3];
const site = await serveDemo(pkg ? { pkg: path.resolve(pkg) } : {});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"], headless: true });
console.log(`load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; chromium ${browser.version()}`);
try {
  for (let r = 1; r <= rounds; r++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const worker = new Promise((ok) => page.on("worker", ok));
    await page.goto(`http://127.0.0.1:${site.port}/?device=cpu`);
    await page.waitForFunction(() => window.iftclDemo.ready || window.iftclDemo.error, null, { timeout: 300_000 });
    const demo = await page.evaluate(() => ({ error: window.iftclDemo.error, first: window.iftclDemo.firstEmbedMs, origin: performance.timeOrigin }));
    if (demo.error) throw new Error(`demo: ${demo.error}`);
    const seen = await (await worker).evaluate(() => ({
      origin: performance.timeOrigin,
      resources: performance.getEntriesByType("resource").map((e) => [e.name.split("/").pop(), e.startTime, e.responseStart, e.responseEnd]),
      marks: performance.getEntriesByType("mark").map((m) => [m.name, m.startTime]),
    }));
    const at = (t) => Math.round(t + seen.origin - demo.origin);
    const parts = [`round ${r}: first embedding ${Math.round(demo.first)} ms`];
    for (const [name, start, first, end] of seen.resources) {
      if (name.endsWith(".wasm") || name.endsWith(".safetensors")) parts.push(`${name} ${at(start)}/${at(first)}/${at(end)}`);
    }
    for (const [name, t] of seen.marks) parts.push(`${name.replace("iftcl: ", "")} ${at(t)}`);
    console.log(parts.join("; "));
    await context.close();
  }
  console.log(`(files: request start / first byte / last byte, ms from navigation); load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
} finally {
  await browser.close();
  site.server.close();
}
