// Types of inline.js: the module's own Encoder and init (iftcl_wasm.d.ts, wasm-bindgen's).
export { Encoder, InitInput, InitOutput, SyncInitInput } from "./iftcl_wasm.js";
import type { InitInput, InitOutput, SyncInitInput } from "./iftcl_wasm.js";
export { simdSupported } from "./index.js";
export default function init(options?: { module_or_path: InitInput | Promise<InitInput> }): Promise<InitOutput>;
export function initSync(options: { module: SyncInitInput }): InitOutput;
