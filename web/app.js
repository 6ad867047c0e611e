// The demo page: loads the model from files served beside it (model/), then similarity,
// heatmap + nearest neighbours, and a small IFTCL fine-tune (with a Cancel button). The encoder
// runs in a Web Worker (pkg/index.js), so the page keeps repainting while it works.
// ?device=auto|webgpu|cpu picks the device (auto: WebGPU when offered, else the CPU);
// ?thread=page runs the module on this page's thread instead (pkg/inline.js), for comparison.
import { Encoder } from "./pkg/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const base = params.get("model") || "model/";
// What the end-to-end test reads.
const demo = (window.iftclDemo = { ready: false, error: null, device: null, loadMs: null, firstEmbedMs: null, pair: null, steps: 0, losses: [], cancelled: null });

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function lines(id) {
  return $(id).value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
}

function colour(v) {
  const t = Math.max(0, Math.min(1, (v + 0.2) / 1.2));
  return `hsl(${220 - 220 * t}, 70%, ${92 - 40 * t}%)`;
}

async function comparePair(encoder) {
  const score = await encoder.similarity($("sent-a").value, $("sent-b").value);
  demo.pair = score;
  $("pair-score").textContent = score.toFixed(4);
  return score;
}

async function compareAll(encoder) {
  const texts = lines("sentences");
  const m = await encoder.matrix(texts);
  const table = $("heatmap");
  table.replaceChildren();
  texts.forEach((t, i) => {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = `${i + 1}. ${t.slice(0, 28)}`;
    tr.appendChild(th);
    m[i].forEach((v) => {
      const td = tr.insertCell();
      td.textContent = v.toFixed(2);
      td.style.background = colour(v);
    });
  });
  const list = $("neighbours");
  list.replaceChildren();
  texts.forEach((t, i) => {
    let best = -1;
    m[i].forEach((v, j) => { if (j !== i && (best < 0 || v > m[i][best])) best = j; });
    const li = document.createElement("li");
    li.textContent = best < 0 ? t : `${t} → ${texts[best]} (${m[i][best].toFixed(3)})`;
    list.appendChild(li);
  });
}

async function fineTune(encoder) {
  const sentences = lines("ft-sentences");
  const steps = Number($("ft-steps").value);
  const batchSize = Number($("ft-batch").value);
  $("ft-progress").max = steps;
  $("ft-progress").value = 0;
  const before = await comparePair(encoder);
  const log = $("ft-log");
  log.textContent = "";
  const t0 = performance.now();
  const controller = new AbortController();
  $("ft-cancel").onclick = () => controller.abort();
  $("ft-cancel").disabled = false;
  let losses;
  try {
    losses = await encoder.fineTune(sentences, {
      steps,
      batchSize,
      lr: 1e-5,
      signal: controller.signal,
      onProgress: (p) => {
        $("ft-progress").value = p.step;
        $("ft-count").textContent = `${p.step} / ${p.steps}`;
        log.textContent += `step ${p.step}: loss ${p.loss.toFixed(5)} (InfoNCE ${p.nce.toFixed(5)}${p.twins === null ? "" : `, Twins ${p.twins.toFixed(6)}`})\n`;
        demo.steps = p.step;
        demo.losses.push(p.loss);
      },
    });
  } catch (e) {
    if (e.name !== "AbortError") throw e;
    demo.cancelled = e.message;
    log.textContent += `${e.message}\n`;
    return;
  } finally {
    $("ft-cancel").disabled = true;
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await comparePair(encoder);
  log.textContent += `${losses.length} steps in ${seconds.toFixed(1)} s (${(losses.length / seconds).toFixed(2)} steps/s); pair similarity ${before.toFixed(4)} → ${after.toFixed(4)}\n`;
  demo.pairBefore = before;
  demo.pairAfter = after;
  demo.stepsPerSecond = losses.length / seconds;
}

async function exportWeights(encoder) {
  const bytes = await encoder.exportWeights();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  a.download = "model.safetensors";
  a.click();
}

/** The encoder class: in a worker (default), or the module's own on this thread. */
async function encoderClass() {
  if (params.get("thread") !== "page") return Encoder;
  const cpuOnly = params.get("device") === "cpu";
  const { default: init, Encoder: InPage } = await import(cpuOnly ? "./pkg/inline-cpu.js" : "./pkg/inline.js");
  await init();
  return InPage;
}

async function main() {
  const t0 = performance.now();
  const Loaded = await encoderClass();
  const encoder = await Loaded.load(
    {
      config: base + "config.json",
      weights: base + "model.safetensors",
      tokenizer: base + "tokenizer.json",
      pooling: base + "1_Pooling/config.json",
      modules: base + "modules.json",
      sentenceBertConfig: base + "sentence_bert_config.json",
    },
    { device: params.get("device") || "auto" },
  );
  demo.loadMs = performance.now() - t0;
  await encoder.embed(["warm-up"]);
  // From the start of navigation: page, module and model downloads, init, one sentence.
  demo.firstEmbedMs = performance.now();
  demo.device = encoder.device;
  setStatus(`Ready on ${encoder.device}: model loaded in ${(demo.loadMs / 1000).toFixed(1)} s, first embedding after ${(demo.firstEmbedMs / 1000).toFixed(1)} s.`);
  const guard = (f) => async () => {
    try {
      await f(encoder);
    } catch (e) {
      demo.error = String(e.message || e);
      setStatus(demo.error, true);
    }
  };
  $("compare-pair").onclick = guard(comparePair);
  $("compare-all").onclick = guard(compareAll);
  $("ft-run").onclick = guard(fineTune);
  $("export").onclick = guard(exportWeights);
  for (const id of ["compare-pair", "compare-all", "ft-run", "export"]) $(id).disabled = false;
  window.iftclEncoder = encoder;
  demo.ready = true;
}

main().catch((e) => {
  demo.error = String(e.message || e);
  setStatus(`Could not start: ${demo.error}`, true);
});
