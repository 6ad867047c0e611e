// Types of inline-cpu.js: the same API as inline.js (the CPU-only module exports the same
// classes and functions).
export { default, initSync, Encoder, simdSupported } from "./inline.js";
