// The worker for the CPU-only module (iftcl_wasm_cpu: no WebGPU code, 4.3 MB against 19.0):
// index.js starts it for `device: "cpu"`, and for "auto" where the page has no WebGPU adapter.
import init, { Encoder } from "./iftcl_wasm_cpu.js";
import { serve } from "./worker-core.js";

serve({ init, Encoder, name: "iftcl_wasm_cpu", urlOption: "cpuWasmUrl" });
