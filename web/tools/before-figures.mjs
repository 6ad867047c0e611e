// The worker test's figures for an earlier build, as that build ran: the module on the page's
// thread (it had no worker). Usage: node tools/before-figures.mjs DIR, where DIR is the web/pkg
// folder of that build (wasm-bindgen's output; this build's lib/ files load it). Prints the
// bundle's size, the time to first embedding, sentences/s over 1,000 STS-B dev sentences and
// the longest task on the page's thread, on the CPU path of headless Chromium.
import { cpSync, existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { web, serveDemo, stsbDev } from "../tests/common.mjs";
import { bundleFigures, figures } from "../tests/responsive.mjs";

const dir = process.argv[2];
if (!dir || !existsSync(path.join(dir, "iftcl_wasm_bg.wasm"))) throw new Error("usage: node tools/before-figures.mjs DIR (a web/pkg folder with iftcl_wasm_bg.wasm)");
const pkg = mkdtempSync(path.join(os.tmpdir(), "iftcl-before-pkg-"));
cpSync(dir, pkg, { recursive: true });
for (const f of ["inline.js", "index.js", "simd.js", "worker.js"]) cpSync(path.join(web, "lib", f), path.join(pkg, f));
const site = await serveDemo({ pkg });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"], headless: true });
try {
  console.log(`bundle ${dir}: ${JSON.stringify(bundleFigures(pkg))}`);
  await figures(browser, `${dir}, encoder on the page's thread`, site.port, "device=cpu&thread=page", stsbDev(1000));
} finally {
  await browser.close();
  site.server.close();
}
