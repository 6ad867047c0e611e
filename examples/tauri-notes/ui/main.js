// The notes app's page: every model call goes through the plugin's bindings
// (tauri-plugin-iftcl-api); folders are chosen through Tauri's dialog plugin; the app's own Rust
// side only says which model to open first. What a person reads is in plain words (messages.js).
import { invoke } from "@tauri-apps/api/core";
import { open } from "@tauri-apps/plugin-dialog";
import * as iftcl from "tauri-plugin-iftcl-api";
import { detail, deviceWords, explain, languageWords } from "./messages.js";

const $ = (id) => document.getElementById(id);

/** Notes longer than this many characters are shown collapsed, with a "show all" toggle. */
const LONG_NOTE = 300;

const state = { model: null, notes: [], lastQuery: "", removed: null, indexDamaged: false, tuning: false };

/** The activity line: `state` is "ready", "busy" or "error" (tests and styles read it). */
function status(text, kind = "ready") {
  $("status").textContent = text;
  $("status").dataset.state = kind;
  $("status").classList.toggle("error", kind === "error");
}

/** A message in a section's own line; an error stays only until the next message there. */
function say(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

/** Runs `work` with `button` disabled; a failure is explained in `out` (or the status line). */
async function busy(button, doing, work, out = null) {
  button.disabled = true;
  try {
    return await work();
  } catch (e) {
    if (out) say(out, explain(e, doing), true);
    else status(explain(e, doing), "error");
    return undefined;
  } finally {
    button.disabled = false;
    updateControls();
  }
}

/** Enables what can be used now: nothing but the model section without a model; the notes
 * tools not while the notes file is damaged; fine-tuning with 2 notes or more. */
function updateControls() {
  const ready = state.model !== null;
  for (const id of ["note-text", "add-note", "import", "query", "search"]) $(id).disabled = !ready || state.indexDamaged;
  for (const id of ["sim-a", "sim-b", "compare", "save", "save-path", "save-choose"]) $(id).disabled = !ready;
  const enough = state.notes.length >= 2;
  $("tune").disabled = !ready || state.indexDamaged || !enough || state.tuning;
  $("tune-hint").hidden = !ready || enough || state.indexDamaged;
  $("reset-tune").disabled = state.tuning;
  $("model-help").hidden = ready;
}

function showModel(model) {
  state.model = model;
  const folder = (model.kept ? model.kept.base : model.source).split(/[\\/]/).filter(Boolean).pop();
  // The folder bundled with an installed app is called "model" (scripts/package-notes.sh).
  const name = folder === "model" ? "the one bundled with the app" : folder;
  $("model-words").textContent = `Model: ${name}. ${languageWords(model.languages)} Notes longer than ${model.maxSeqLength} tokens count only up to there.`;
  $("device").textContent = deviceWords(model.device);
  $("device").dataset.device = model.device;
  showTuned(model.kept);
}

function showTuned(kept) {
  $("tuned").hidden = !kept;
  $("tuned").dataset.base = kept ? kept.base : "";
  $("tuned-notes").textContent = kept ? `${kept.notes} note${kept.notes === 1 ? "" : "s"}` : "";
}

function noteItem(n) {
  const li = document.createElement("li");
  li.dataset.id = n.id;
  const text = document.createElement("span");
  text.className = "note-text";
  text.textContent = n.text;
  li.append(text);
  if (n.text.length > LONG_NOTE || n.truncated) {
    li.classList.add("collapsed");
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "toggle";
    toggle.textContent = "show all";
    toggle.onclick = () => {
      toggle.textContent = li.classList.toggle("collapsed") ? "show all" : "show less";
    };
    li.append(toggle);
  }
  if (n.truncated) {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = ` (long: only its first ${state.model.maxSeqLength} tokens count toward its meaning)`;
    li.append(hint);
  }
  const remove = document.createElement("button");
  remove.textContent = "remove";
  remove.type = "button";
  remove.className = "remove";
  remove.onclick = () => removeNote(n, remove);
  li.append(remove);
  return li;
}

async function showNotes() {
  state.notes = await iftcl.indexDocuments();
  $("notes").replaceChildren(...state.notes.map(noteItem));
  document.body.dataset.notes = String(state.notes.length);
  $("notes-count").textContent = state.notes.length ? `(${state.notes.length})` : "";
  updateControls();
  return state.notes;
}

function showDamaged(problem) {
  state.indexDamaged = problem !== null;
  $("damaged").hidden = !state.indexDamaged;
  if (state.indexDamaged) {
    $("damaged-text").textContent = `The notes file could not be read (${detail(problem)}). Your notes in it are not shown, and the file is left as it is. Comparing two texts still works.`;
    state.notes = [];
    $("notes").replaceChildren();
    $("notes-count").textContent = "";
    document.body.dataset.notes = "0";
  }
  updateControls();
}

async function load(path, why = "") {
  status("Opening the model…", "busy");
  const t0 = performance.now();
  const loaded = await iftcl.loadModel({ path });
  showModel(loaded.model);
  showDamaged(loaded.indexProblem);
  if (!loaded.indexProblem) await showNotes();
  const took = ((performance.now() - t0) / 1000).toFixed(2);
  const reread = loaded.index ? " The notes were read again with this model." : "";
  status(`${why}Model opened in ${took} s.${loaded.indexProblem ? " The notes file is damaged (see Notes)." : ""}${reread}`);
  await refreshResults();
}

/** Searches again for the last query, so the results always match the notes and the model. */
async function refreshResults() {
  if (!state.lastQuery || state.indexDamaged || !state.model) return;
  await search(state.lastQuery).catch(() => $("results").replaceChildren());
}

async function search(query) {
  const t0 = performance.now();
  const hits = await iftcl.indexSearch(query, 5);
  say($("search-time"), `${(performance.now() - t0).toFixed(0)} ms`);
  $("results").replaceChildren(
    ...hits.map((h) => {
      const li = document.createElement("li");
      li.dataset.id = h.id;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = h.score.toFixed(4);
      const text = document.createElement("span");
      text.className = "text";
      // A long note is shown by its start; the whole text is in the tooltip.
      text.textContent = h.text.length > LONG_NOTE ? `${h.text.slice(0, LONG_NOTE)}…` : h.text;
      text.title = h.text;
      li.append(score, text);
      return li;
    }),
  );
  if (!hits.length) say($("search-time"), "No notes yet: add some above.");
}

/** Adds the texts that are not notes yet; says how many were already there. */
async function addNotes(texts) {
  const present = new Set(state.notes.map((n) => n.text.trim()));
  const lines = texts.map((t) => t.trim()).filter(Boolean);
  const distinct = [...new Set(lines)];
  const fresh = distinct.filter((t) => !present.has(t));
  const [already, repeated] = [distinct.length - fresh.length, lines.length - distinct.length];
  const skippedWords = [already ? `${already} already there` : "", repeated ? `${repeated} repeated` : ""].filter(Boolean).join(", ");
  if (!fresh.length) {
    say($("notes-message"), !lines.length ? "Nothing to add: the text is empty." : already === 1 && lines.length === 1 ? "Nothing added: that note is already there." : `Nothing added (${skippedWords}).`);
    return;
  }
  const stamp = Date.now().toString(36);
  await iftcl.indexAdd(fresh.map((text, i) => ({ id: `note-${stamp}-${i}`, text })));
  await showNotes();
  $("undo").hidden = true;
  say($("notes-message"), `${fresh.length === 1 ? "Note" : `${fresh.length} notes`} added${skippedWords ? ` (skipped: ${skippedWords})` : ""}.`);
  await refreshResults();
}

async function removeNote(note, button) {
  await busy(button, "Removing the note", async () => {
    await iftcl.indexRemove([note.id]);
    state.removed = note;
    await showNotes();
    const short = note.text.length > 40 ? `${note.text.slice(0, 40)}…` : note.text;
    say($("notes-message"), `Removed “${short}”.`);
    $("undo").hidden = false;
    await refreshResults();
  }, $("notes-message"));
}

$("undo").onclick = () =>
  busy($("undo"), "Putting the note back", async () => {
    const note = state.removed;
    if (!note) return;
    await iftcl.indexAdd([{ id: note.id, text: note.text }]);
    state.removed = null;
    $("undo").hidden = true;
    await showNotes();
    say($("notes-message"), "The note is back.");
    await refreshResults();
  }, $("notes-message"));

$("load-form").onsubmit = (ev) => {
  ev.preventDefault();
  const path = $("model-path").value.trim();
  if (!path) return status("Type the full path of a model folder, or choose one.", "error");
  busy($("load"), "Opening the model", () => load(path));
};

$("model-choose").onclick = () =>
  busy($("model-choose"), "Choosing a folder", async () => {
    const path = await open({ directory: true, title: "The folder of a sentence-transformers model" });
    if (!path) return;
    $("model-path").value = path;
    await load(path);
  });

$("reset-index").onclick = () =>
  busy($("reset-index"), "Starting a new notes file", async () => {
    const out = await iftcl.resetIndex();
    showDamaged(null);
    await showNotes();
    say($("notes-message"), out.damagedFileKeptAs ? `A new, empty notes file was started. The damaged one is kept as ${out.damagedFileKeptAs}.` : "A new, empty notes file was started.");
  }, $("notes-message"));

$("note-form").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("note-text").value.trim();
  if (!text) return say($("notes-message"), "Write something first.", true);
  busy($("add-note"), "Adding the note", async () => {
    await addNotes([text]);
    $("note-text").value = "";
  }, $("notes-message"));
};

$("import").onchange = async () => {
  const file = $("import").files[0];
  if (!file) return;
  const lines = (await file.text()).split("\n");
  await busy($("add-note"), `Importing ${file.name}`, () => addNotes(lines), $("notes-message"));
  $("import").value = "";
};

$("search-form").onsubmit = (ev) => {
  ev.preventDefault();
  const query = $("query").value.trim();
  if (!query) {
    $("results").replaceChildren();
    return say($("search-time"), "Type what you are looking for.", true);
  }
  state.lastQuery = query;
  busy($("search"), "Searching", () => search(query), $("search-time"));
};

$("compare-form").onsubmit = (ev) => {
  ev.preventDefault();
  const [a, b] = [$("sim-a").value, $("sim-b").value];
  if (!a.trim() || !b.trim()) return say($("similarity"), "Type two texts to compare.", true);
  busy($("compare"), "Comparing", async () => {
    say($("similarity"), (await iftcl.similarity(a, b)).toFixed(4));
  }, $("similarity"));
};

$("tune-form").onsubmit = (ev) => {
  ev.preventDefault();
  const steps = Number($("steps").value);
  if (!Number.isInteger(steps) || steps < 1 || steps > 200) return say($("tune-status"), "Choose between 1 and 200 steps.", true);
  $("progress").value = 0;
  say($("tune-status"), "Starting…");
  $("cancel-tune").disabled = false;
  state.tuning = true;
  let cleared = false;
  busy($("tune"), "The fine-tune", async () => {
    try {
      const notes = state.notes.map((n) => n.text);
      const out = await iftcl.fineTune(notes, {
        steps,
        onProgress: (p) => {
          // The old log goes only when the new one starts, and the log keeps its height.
          if (!cleared) {
            $("tune-log").replaceChildren();
            cleared = true;
          }
          $("progress").value = p.step / p.steps;
          const li = document.createElement("li");
          li.className = "step";
          li.dataset.loss = String(p.loss);
          li.textContent = `step ${p.step}/${p.steps}: loss ${p.loss.toExponential(2)}`;
          $("tune-log").append(li);
          li.scrollIntoView({ block: "nearest" });
          say($("tune-status"), `step ${p.step} of ${p.steps}`);
        },
      });
      const kept = await iftcl.keepTunedModel();
      state.model = await iftcl.modelInfo();
      showTuned(kept);
      say($("tune-status"), `Done: ${out.losses.length} steps in ${out.seconds.toFixed(1)} s. The tuned model is kept and opens next time.`);
      await refreshResults();
    } finally {
      state.tuning = false;
      $("cancel-tune").disabled = true;
    }
  }, $("tune-status"));
};

$("cancel-tune").onclick = () => {
  say($("tune-status"), "Cancelling after this step…");
  iftcl.cancelFineTune();
};

$("reset-tune").onclick = () =>
  busy($("reset-tune"), "Going back to the original model", async () => {
    const base = $("tuned").dataset.base;
    await iftcl.forgetKeptModel();
    await load(base, "Back to the model before the fine-tune. ");
  });

/** A full path on Linux, macOS or Windows. */
const isAbsolute = (p) => p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith("\\\\");

async function save(path, overwrite) {
  $("save-confirm").hidden = true;
  try {
    const saved = await iftcl.saveModel(path, overwrite);
    say($("save-status"), `Saved in ${saved.path}.`);
  } catch (e) {
    if (iftcl.isIftclError(e) && e.kind === "exists") {
      $("save-confirm-text").textContent = `A model is already saved in ${path}. Replace it?`;
      $("save-confirm").hidden = false;
      say($("save-status"), "");
      return;
    }
    throw e;
  }
}

$("save-form").onsubmit = (ev) => {
  ev.preventDefault();
  const path = $("save-path").value.trim();
  if (!isAbsolute(path)) return say($("save-status"), "Give the full path of a folder (such as /home/you/tuned-model), or choose one.", true);
  busy($("save"), "Saving the model", () => save(path, false), $("save-status"));
};

$("save-choose").onclick = () =>
  busy($("save-choose"), "Choosing a folder", async () => {
    const path = await open({ directory: true, title: "A folder to save the model in (an empty one, or a saved model to replace)" });
    if (path) $("save-path").value = path;
  }, $("save-status"));

$("save-replace").onclick = () => busy($("save-replace"), "Saving the model", () => save($("save-path").value.trim(), true), $("save-status"));
$("save-keep").onclick = () => {
  $("save-confirm").hidden = true;
  say($("save-status"), "Nothing was saved; the folder is as it was.");
};

// The first model: the tuned one kept from an earlier run, else the one the app was started
// with (IFTCL_MODEL, or one bundled with it), else the person chooses a folder.
updateControls();
const kept = await iftcl.keptModel().catch(() => null);
const start = await invoke("default_model");
if (kept) {
  await busy($("load"), "Opening the tuned model", () => load(kept.path));
  if (!state.model && kept.base) await busy($("load"), "Opening the model", () => load(kept.base, "The tuned model could not be opened; this is the one it came from. "));
} else if (start) {
  $("model-path").value = start;
  await busy($("load"), "Opening the model", () => load(start));
} else {
  status("Choose a model folder to begin (under Model).", "ready");
  document.body.dataset.notes = "0";
}
