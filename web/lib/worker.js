// The worker for the full module (WebGPU and the CPU): index.js starts it unless the device
// is the CPU (worker-cpu.js). What it does is worker-core.js.
import init, { Encoder } from "./iftcl_wasm.js";
import { serve } from "./worker-core.js";

serve({ init, Encoder, name: "iftcl_wasm", urlOption: "wasmUrl" });
