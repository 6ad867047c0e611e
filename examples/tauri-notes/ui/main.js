// The notes app's page: every model call goes through the plugin's bindings
// (tauri-plugin-iftcl-api); the app's own Rust side only says which model to open first.
import { invoke } from "@tauri-apps/api/core";
import * as iftcl from "tauri-plugin-iftcl-api";

const $ = (id) => document.getElementById(id);

function message(e) {
  return iftcl.isIftclError(e) ? `${e.kind}: ${e.message}` : String(e);
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

/** Runs `work` with `button` disabled; reports an error in `out` (or the status line). */
async function busy(button, work, out = null) {
  button.disabled = true;
  try {
    return await work();
  } catch (e) {
    if (out) {
      out.textContent = message(e);
      out.classList.add("error");
    } else {
      status(message(e), true);
    }
  } finally {
    button.disabled = false;
  }
}

async function showNotes() {
  const notes = await iftcl.indexDocuments();
  $("notes").replaceChildren(
    ...notes.map((n) => {
      const li = document.createElement("li");
      li.dataset.id = n.id;
      li.append(n.text);
      const remove = document.createElement("button");
      remove.textContent = "remove";
      remove.type = "button";
      remove.onclick = async () => {
        await iftcl.indexRemove([n.id]).catch((e) => status(message(e), true));
        await showNotes();
      };
      li.append(remove);
      return li;
    }),
  );
  return notes;
}

async function load(path) {
  status(`loading ${path} ...`);
  const t0 = performance.now();
  const loaded = await iftcl.loadModel({ path });
  $("device").textContent = loaded.model.device;
  const notes = await showNotes();
  const took = ((performance.now() - t0) / 1000).toFixed(2);
  status(`${loaded.model.family} model, ${loaded.model.dim} dimensions, loaded in ${took} s; ${notes.length} notes. ${loaded.index ? loaded.index.message : ""}`.trim());
}

async function addNotes(texts) {
  const stamp = Date.now().toString(36);
  const documents = texts.map((text, i) => ({ id: `note-${stamp}-${i}`, text }));
  const size = await iftcl.indexAdd(documents);
  await showNotes();
  status(`${documents.length} note(s) added; ${size} in the index.`);
}

$("load-form").onsubmit = (ev) => {
  ev.preventDefault();
  busy($("load"), () => load($("model-path").value.trim()));
};

$("note-form").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("note-text").value.trim();
  if (!text) return;
  busy($("add-note"), async () => {
    await addNotes([text]);
    $("note-text").value = "";
  });
};

$("import").onchange = async () => {
  const file = $("import").files[0];
  if (!file) return;
  const lines = (await file.text()).split("\n").map((l) => l.trim()).filter(Boolean);
  busy($("add-note"), () => addNotes(lines));
};

$("search-form").onsubmit = (ev) => {
  ev.preventDefault();
  busy($("search"), async () => {
    const t0 = performance.now();
    const hits = await iftcl.indexSearch($("query").value, 5);
    $("search-time").textContent = `${(performance.now() - t0).toFixed(0)} ms`;
    $("results").replaceChildren(
      ...hits.map((h) => {
        const li = document.createElement("li");
        li.dataset.id = h.id;
        const score = document.createElement("span");
        score.className = "score";
        score.textContent = h.score.toFixed(4);
        li.append(score, h.text);
        return li;
      }),
    );
  }, $("search-time"));
};

$("compare-form").onsubmit = (ev) => {
  ev.preventDefault();
  busy($("compare"), async () => {
    $("similarity").classList.remove("error");
    $("similarity").textContent = (await iftcl.similarity($("sim-a").value, $("sim-b").value)).toFixed(4);
  }, $("similarity"));
};

$("tune-form").onsubmit = (ev) => {
  ev.preventDefault();
  const steps = Number($("steps").value);
  $("tune-log").replaceChildren();
  $("progress").value = 0;
  $("tune-status").classList.remove("error");
  $("cancel-tune").disabled = false;
  busy($("tune"), async () => {
    try {
      const notes = (await iftcl.indexDocuments()).map((n) => n.text);
      const out = await iftcl.fineTune(notes, {
        steps,
        batchSize: 8,
        onProgress: (p) => {
          $("progress").value = p.step / p.steps;
          const li = document.createElement("li");
          li.className = "step";
          li.dataset.loss = String(p.loss);
          li.textContent = `step ${p.step}/${p.steps}: loss ${p.loss.toFixed(4)}`;
          $("tune-log").append(li);
          $("tune-status").textContent = `step ${p.step} of ${p.steps}`;
        },
      });
      const info = await iftcl.modelInfo();
      $("tune-status").textContent = `done: ${out.losses.length} steps in ${out.seconds.toFixed(1)} s (${(out.seconds / out.losses.length).toFixed(2)} s a step); ${info.tunedSteps} tuned steps in the model. ${out.index ? out.index.message : ""}`;
    } finally {
      $("cancel-tune").disabled = true;
    }
  }, $("tune-status"));
};

$("cancel-tune").onclick = () => iftcl.cancelFineTune();

$("save-form").onsubmit = (ev) => {
  ev.preventDefault();
  busy($("save"), async () => {
    const saved = await iftcl.saveModel($("save-path").value.trim());
    $("save-status").classList.remove("error");
    $("save-status").textContent = `saved to ${saved.path} (${saved.tunedSteps} tuned steps)`;
  }, $("save-status"));
};

// Open the model the app was started with (IFTCL_MODEL, or the one bundled with it).
const start = await invoke("default_model");
if (start) {
  $("model-path").value = start;
  await busy($("load"), () => load(start));
}
