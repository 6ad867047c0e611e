// What the page tells a person when a call fails: a sentence per kind of failure (the plugin's
// typed `kind`), never a command name, an error kind or a setting the person did not choose.
// The library's own words are kept only where they name something the person can act on (a
// file, a folder), with the command prefix ("loadModel: ") taken off.
import * as iftcl from "tauri-plugin-iftcl-api";

/** Advice meant for the command line (a script to run, a flag to pass): of no use in the app. */
const CLI_ADVICE = /scripts\/|--[a-z]|`python|iftcl [a-z]/;

/** The library's message without a leading command name ("saveModel: ...") and without the
 * command-line advice it carries for terminal users ("(run scripts/fetch-model.sh ...)"). */
export function detail(message) {
  let text = String(message).replace(/^(?:[a-z][A-Za-z]+: )+/, "");
  // "; advice" clauses (not crossing a parenthesis), then parenthesised advice, innermost first.
  text = text.replace(/;\s*[^;()]*/g, (clause) => (CLI_ADVICE.test(clause) ? "" : clause));
  for (let before = ""; before !== text; ) {
    before = text;
    text = text.replace(/\s*\(([^()]*)\)/g, (whole, inner) => (CLI_ADVICE.test(inner) ? "" : whole));
  }
  return text.trim();
}

/** A sentence for `e`, a rejection of `doing` (e.g. "Loading the model"). */
export function explain(e, doing) {
  if (!iftcl.isIftclError(e)) return `${doing} failed: ${String(e)}`;
  const more = detail(e.message);
  switch (e.kind) {
    case "noModel":
      return "Open a model first: choose its folder under Model.";
    case "model":
      return `${doing} failed: this folder does not hold a model the app can open (${more}).`;
    case "device":
      return `${doing} failed on this computer's graphics or processor (${more}).`;
    case "io":
      return `${doing} failed: a file could not be read or written (${more}).`;
    case "index":
      return "The notes file is damaged, so the notes cannot be shown or searched. Comparing two texts still works.";
    case "busy":
      return "A fine-tune is running: wait for it to finish, or cancel it.";
    case "cancelled":
      return "Fine-tune cancelled: the model is exactly as it was before.";
    case "diverged":
      return "The fine-tune went wrong (its numbers stopped making sense), so the model was left as it was. Try fewer steps.";
    case "exists":
      return "A model is already saved in that folder.";
    default:
      return `${doing} failed: ${more}`;
  }
}

/** Where the model runs, in words: "this computer's processor" or the graphics card's name. */
export function deviceWords(device) {
  const gpu = /^wgpu: (.*?) \(/.exec(device);
  if (gpu) return `the graphics card (${gpu[1]})`;
  return device.startsWith("cpu") ? "this computer's processor" : device;
}

const LANGUAGES = { en: "English", de: "German", fr: "French", es: "Spanish", it: "Italian", pt: "Portuguese", nl: "Dutch", zh: "Chinese", ja: "Japanese", ko: "Korean", ar: "Arabic", ru: "Russian", multilingual: "many languages" };

/** The model's languages, in words, with what that means for notes in others. */
export function languageWords(languages) {
  if (!languages.length) return "Its languages are not stated: notes in other languages than it was trained on rank poorly.";
  const names = languages.map((l) => LANGUAGES[l] ?? l);
  if (languages.includes("multilingual") || languages.length > 3) return `It reads ${names.slice(0, 4).join(", ")}${languages.length > 4 ? " and more" : ""}.`;
  return `It reads ${names.join(" and ")}: notes in other languages rank poorly.`;
}
