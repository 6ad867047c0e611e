// Types of index.js: the encoder in a Web Worker.

/**
 * Model files: bytes, or URLs (resolved against the page). `weights` is model.safetensors in
 * f32, f16, bf16 or int8 (`iftcl convert --dtype f16` halves the download).
 */
export interface ModelFiles {
  config: Uint8Array | ArrayBuffer | string | URL;
  weights: Uint8Array | ArrayBuffer | string | URL;
  tokenizer: Uint8Array | ArrayBuffer | string | URL;
  pooling?: Uint8Array | ArrayBuffer | string | URL;
  modules?: Uint8Array | ArrayBuffer | string | URL;
  sentenceBertConfig?: Uint8Array | ArrayBuffer | string | URL;
  sentenceTransformersConfig?: Uint8Array | ArrayBuffer | string | URL;
}

export interface LoadOptions {
  /**
   * "auto" (default): WebGPU when the worker is offered an adapter, else the CPU. "cpu", and
   * "auto" where the browser offers no WebGPU adapter, load the CPU-only module (iftcl_wasm_cpu).
   */
  device?: "auto" | "webgpu" | "cpu";
  /** Where iftcl_wasm_bg.wasm (the full module) is served (default: beside the package's files). */
  wasmUrl?: string | URL;
  /** Where iftcl_wasm_cpu_bg.wasm (the CPU-only module) is served (default: beside the package's files). */
  cpuWasmUrl?: string | URL;
  /** Where the package's worker.js is served (default: beside index.js). */
  workerUrl?: string | URL;
}

/** `twins` is null for a loss without the Twins term. */
export interface Progress { step: number; steps: number; loss: number; nce: number; twins: number | null }

export interface FineTuneOptions {
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  fusedLoss?: "auto" | "on" | "off";
  onProgress?: (p: Progress) => void;
  /** Cancels after the running step: the call rejects with an AbortError and the encoder keeps
   *  the weights it had before the call (all or nothing, as when a step fails). */
  signal?: AbortSignal;
}

export interface DeviceCheck { name: string; relErr: number; maxAbsErr: number; scale: number; finite: boolean; passed: boolean }

/** Whether this engine runs WebAssembly SIMD, which the bundle needs. */
export function simdSupported(): boolean;

export class Encoder {
  static load(files: ModelFiles, options?: LoadOptions): Promise<Encoder>;
  readonly device: string;
  readonly dim: number;
  /** `signal` cancels between batches of 64 sentences (AbortError). */
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
  similarity(a: string, b: string): Promise<number>;
  matrix(texts: string[]): Promise<Float32Array[]>;
  fineTune(sentences: string[], options?: FineTuneOptions): Promise<number[]>;
  resetFineTune(): Promise<void>;
  checkDevice(): Promise<DeviceCheck[]>;
  /** model.safetensors bytes of the current weights; `dtype` "f32" (default), "f16", "bf16" or "int8". */
  exportWeights(options?: { dtype?: "f32" | "f16" | "bf16" | "int8" }): Promise<Uint8Array>;
  /** Stops the worker at once; calls in flight reject with an AbortError. */
  terminate(): void;
}
