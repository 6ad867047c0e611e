// TypeScript bindings of tauri-plugin-iftcl: sentence embeddings, a semantic index and IFTCL
// fine-tuning in a Tauri 2 app. Every function calls one command of the plugin
// (`plugin:iftcl|<name>`) and rejects with an `IftclError` carrying the library's message.

import { Channel, invoke } from "@tauri-apps/api/core";

/** Why a command failed: `kind` says what kind of failure, `message` the library's words
 * (naming the file, field or argument at fault). */
export interface IftclError {
  kind: "noModel" | "invalidInput" | "model" | "device" | "io" | "exists" | "index" | "busy" | "cancelled" | "diverged";
  message: string;
}

/** Whether a rejection value is an `IftclError`. */
export function isIftclError(e: unknown): e is IftclError {
  return typeof e === "object" && e !== null && typeof (e as IftclError).kind === "string" && typeof (e as IftclError).message === "string";
}

/** The loaded model. */
export interface ModelInfo {
  /** The folder it was loaded from. */
  source: string;
  /** Encoder family: "Bert", "Roberta" or "MpNet". */
  family: string;
  /** Width of its vectors. */
  dim: number;
  /** Longest input in tokens (longer texts are truncated). */
  maxSeqLength: number;
  /** The device it runs on, e.g. "cpu (burn flex)" or "wgpu: <adapter> (Vulkan, DiscreteGpu)". */
  device: string;
  /** Fine-tuning steps applied since it was loaded. */
  tunedSteps: number;
  /** Distinct texts the last fine-tune since it was loaded used (0 before one). */
  tunedOn: number;
  /** SHA-256 of what its embeddings depend on (weights, pooling, prompt). */
  fingerprint: string;
  /** The languages its model card names (README.md's `language`), e.g. ["en"]; empty when it names none. */
  languages: string[];
  /** Set when the folder is a tuned model kept by `keepTunedModel`. */
  kept: KeptModel | null;
}

/** A tuned model kept in the app's data folder between runs. */
export interface KeptModel {
  /** Its folder. */
  path: string;
  /** The folder of the model it was tuned from (the one to reopen on a reset). */
  base: string;
  /** Texts its last fine-tune used. */
  notes: number;
  /** Tuning steps in its weights since `base`. */
  steps: number;
  /** When it was kept, in seconds since 1970 (UTC). */
  savedAt: number;
  /** The languages the base model's card names. */
  languages: string[];
}

/** The index embedded again because the model changed. */
export interface IndexChange {
  documents: number;
  seconds: number;
  message: string;
}

/** What `loadModel` resolves to. */
export interface LoadResult {
  model: ModelInfo;
  /** Set when the stored index came from another model and was embedded again. */
  index: IndexChange | null;
  /** Set when the index file is damaged: the model embeds, the index commands refuse until
   * `resetIndex` (which keeps the damaged file under another name). */
  indexProblem: string | null;
}

/** What `resetIndex` did. */
export interface IndexReset {
  /** Where the damaged file was moved (null when there was none). */
  damagedFileKeptAs: string | null;
}

/** Where to load a model from: a folder on disk, or one bundled as an app resource. */
export type ModelSource = { path: string; resource?: never } | { resource: string; path?: never };

/** `auto` (a hardware GPU if there is one, else the CPU), `cpu`, `gpu` or `gpu:N`. */
export type DeviceChoice = "auto" | "cpu" | "gpu" | `gpu:${number}`;

export interface Adapter {
  index: number;
  name: string;
  backend: string;
  deviceType: string;
  /** A real GPU, not one emulated on the CPU. */
  hardware: boolean;
}

export interface DeviceList {
  adapters: Adapter[];
  /** What `auto` runs on. */
  auto: string;
  /** The loaded model's device, or null. */
  current: string | null;
}

export interface Document {
  id: string;
  text: string;
}

/** A stored document, with what the model reads of it. */
export interface DocumentInfo extends Document {
  /** Tokens of it the model reads (at most the model's `maxSeqLength`). */
  tokens: number;
  /** It reaches the model's limit: what lies beyond `maxSeqLength` tokens does not count. */
  truncated: boolean;
}

export interface Hit extends Document {
  /** Cosine similarity to the query, in [-1, 1]. */
  score: number;
}

export interface Progress {
  step: number;
  steps: number;
  loss: number;
  nce: number;
  twins: number | null;
}

export interface FineTuneOptions {
  /** Steps (default 10). */
  steps?: number;
  /** Sentences per step (default 8, at least 2). */
  batchSize?: number;
  /** Learning rate (default 1e-5). */
  lr?: number;
  /** Seed (default 42). */
  seed?: number;
  /** Called after each step. */
  onProgress?: (p: Progress) => void;
}

export interface FineTuneResult {
  losses: number[];
  seconds: number;
  /** The index, embedded again with the tuned model. */
  index: IndexChange | null;
}

export interface SavedModel {
  path: string;
  tunedSteps: number;
}

const call = <T>(cmd: string, args?: Record<string, unknown>): Promise<T> => invoke<T>(`plugin:iftcl|${cmd}`, args);

/** Loads a model folder, replacing the loaded one. */
export function loadModel(source: ModelSource, device?: DeviceChoice): Promise<LoadResult> {
  return call("load_model", { ...source, device });
}

/** The loaded model, or null. */
export function modelInfo(): Promise<ModelInfo | null> {
  return call("model_info");
}

/** The GPU adapters, what `auto` picks, and the loaded model's device. */
export function devices(): Promise<DeviceList> {
  return call("devices");
}

/** One embedding per text. */
export async function embed(texts: string[]): Promise<Float32Array[]> {
  const rows = await call<number[][]>("embed", { texts });
  return rows.map((r) => Float32Array.from(r));
}

/** Cosine similarity of two texts. */
export function similarity(a: string, b: string): Promise<number> {
  return call("similarity", { a, b });
}

/** Cosine similarity of every pair of texts (row i, column j). */
export function similarityMatrix(texts: string[]): Promise<number[][]> {
  return call("similarity_matrix", { texts });
}

/** Adds documents to the index (an id given again replaces its document); resolves to its size. */
export function indexAdd(documents: Document[]): Promise<number> {
  return call("index_add", { documents });
}

/** The `k` documents closest in meaning to `query`, best first. */
export function indexSearch(query: string, k = 5): Promise<Hit[]> {
  return call("index_search", { query, k });
}

/** Removes documents by id; resolves to how many were there. */
export function indexRemove(ids: string[]): Promise<number> {
  return call("index_remove", { ids });
}

/** Empties the index. */
export function indexClear(): Promise<void> {
  return call("index_clear");
}

/** The stored documents, in the order they were added, with the tokens the model reads of each. */
export function indexDocuments(): Promise<DocumentInfo[]> {
  return call("index_documents");
}

/** A new, empty index in place of a damaged index file; the damaged file is kept under another name. */
export function resetIndex(): Promise<IndexReset> {
  return call("reset_index");
}

/** IFTCL steps on `sentences` (at least 2). The tuned weights replace the model's only when
 * every step ran; a cancelled or failed call leaves the model and the index as they were. */
export function fineTune(sentences: string[], options: FineTuneOptions = {}): Promise<FineTuneResult> {
  const { onProgress, ...rest } = options;
  const channel = new Channel<Progress>();
  if (onProgress) channel.onmessage = onProgress;
  return call("fine_tune", { sentences, options: rest, onProgress: channel });
}

/** Stops the running fine-tune before its next step; resolves to false when none runs. */
export function cancelFineTune(): Promise<boolean> {
  return call("cancel_fine_tune");
}

/** Saves the loaded model (tuned or not) as a sentence-transformers folder at `path`, an
 * absolute path. A folder that holds a model already rejects with kind "exists" unless
 * `overwrite`; one that holds anything else is never replaced. */
export function saveModel(path: string, overwrite = false): Promise<SavedModel> {
  return call("save_model", { path, overwrite });
}

/** Keeps the loaded, tuned model in the app's data folder (atomically, replacing the one kept
 * before), so that the app can open it at its next start (`keptModel`). */
export function keepTunedModel(): Promise<KeptModel> {
  return call("keep_tuned_model");
}

/** The kept tuned model, or null. */
export function keptModel(): Promise<KeptModel | null> {
  return call("kept_model");
}

/** Deletes the kept tuned model (the loaded model stays loaded until another is); resolves to
 * false when none was kept. */
export function forgetKeptModel(): Promise<boolean> {
  return call("forget_kept_model");
}
