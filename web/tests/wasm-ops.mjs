// Reads a wasm module's code section instruction by instruction (not a byte scan, since 0xFD
// also occurs inside immediates) and counts the SIMD instructions (the 0xFD prefix: v128 loads,
// stores, lane ops, arithmetic) of each function, with the function's name where the module
// keeps its name section. Every body must decode to exactly its declared length, ending in
// `end`, or this throws: a decoder that lost its place cannot report a count.

function reader(bytes) {
  let i = 0;
  const r = {
    get pos() { return i; },
    set pos(v) { i = v; },
    byte() { return bytes[i++]; },
    u32() {
      let result = 0, shift = 0, b;
      do { b = bytes[i++]; result += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
      return result;
    },
    // Signed LEB of any width: only its length matters here.
    sleb() { while (bytes[i++] & 0x80); },
    skip(n) { i += n; },
    name() { const n = r.u32(); const s = new TextDecoder().decode(bytes.subarray(i, i + n)); i += n; return s; },
  };
  return r;
}

const memarg = (r) => { const align = r.u32(); if (align & 0x40) r.u32(); r.u32(); };
const blocktype = (r) => { const b = r.byte(); if (b !== 0x40 && !(b >= 0x6f && b <= 0x7f)) { r.pos -= 1; r.sleb(); } };

/// Skips one instruction's immediates; returns 1 for a SIMD instruction, else 0.
function instruction(r, op) {
  if (op >= 0x45 && op <= 0xc4) return 0; // numeric, no immediates
  if (op >= 0x28 && op <= 0x3e) { memarg(r); return 0; }
  switch (op) {
    case 0x00: case 0x01: case 0x05: case 0x0b: case 0x0f: case 0x1a: case 0x1b: case 0xd1: return 0;
    case 0x02: case 0x03: case 0x04: blocktype(r); return 0;
    case 0x0c: case 0x0d: case 0x10: case 0x12: case 0xd2: r.u32(); return 0;
    case 0x0e: { const n = r.u32(); for (let k = 0; k <= n; k++) r.u32(); return 0; }
    case 0x11: case 0x13: r.u32(); r.u32(); return 0;
    case 0x1c: { const n = r.u32(); for (let k = 0; k < n; k++) r.byte(); return 0; }
    case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: r.u32(); return 0;
    case 0x3f: case 0x40: r.u32(); return 0;
    case 0x41: case 0x42: r.sleb(); return 0;
    case 0x43: r.skip(4); return 0;
    case 0x44: r.skip(8); return 0;
    case 0xd0: r.byte(); return 0;
    case 0xfc: {
      const sub = r.u32();
      if (sub <= 7) return 0;
      if (sub === 8 || sub === 10 || sub === 12 || sub === 14) { r.u32(); r.u32(); return 0; }
      if (sub <= 17) { r.u32(); return 0; }
      throw new Error(`unknown 0xfc ${sub}`);
    }
    case 0xfd: {
      const sub = r.u32();
      if (sub <= 11 || sub === 92 || sub === 93) memarg(r); // v128 loads and stores
      else if (sub === 12 || sub === 13) r.skip(16); // v128.const, i8x16.shuffle
      else if (sub >= 21 && sub <= 34) r.byte(); // extract / replace lane
      else if (sub >= 84 && sub <= 91) { memarg(r); r.byte(); } // load / store lane
      return 1;
    }
    default: throw new Error(`unknown opcode 0x${op.toString(16)} at byte ${r.pos - 1}`);
  }
}

/// { functions, simd, byFunction: [{ index, name, simd }] } for the module `bytes`.
export function simdCounts(bytes) {
  const r = reader(bytes);
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new Error("not a wasm module");
  r.pos = 8;
  let imports = 0;
  const names = new Map();
  const bodies = [];
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (id === 2) {
      for (let n = r.u32(), k = 0; k < n; k++) {
        r.name(); r.name();
        const kind = r.byte();
        if (kind === 0) { r.u32(); imports++; }
        r.pos = kind === 0 ? r.pos : skipImport(r, kind);
      }
    } else if (id === 10) {
      for (let n = r.u32(), k = 0; k < n; k++) {
        const len = r.u32();
        bodies.push({ index: imports + k, start: r.pos, end: r.pos + len });
        r.skip(len);
      }
    } else if (id === 0 && r.name() === "name") {
      while (r.pos < end) {
        const sub = r.byte(), subEnd = r.u32() + r.pos;
        if (sub === 1) for (let n = r.u32(), k = 0; k < n; k++) { const idx = r.u32(); names.set(idx, r.name()); }
        r.pos = subEnd;
      }
    }
    r.pos = end;
  }
  const byFunction = [];
  let simd = 0;
  for (const b of bodies) {
    r.pos = b.start;
    for (let groups = r.u32(), k = 0; k < groups; k++) { r.u32(); r.byte(); }
    let count = 0, last = -1;
    while (r.pos < b.end) { last = r.byte(); count += instruction(r, last); }
    if (r.pos !== b.end || last !== 0x0b) throw new Error(`function ${b.index}: decoding ended at ${r.pos}, body ends at ${b.end} (last opcode 0x${last.toString(16)})`);
    simd += count;
    byFunction.push({ index: b.index, name: names.get(b.index) ?? null, simd: count });
  }
  return { functions: bodies.length, simd, byFunction };
}

function skipImport(r, kind) {
  if (kind === 1) { r.byte(); const flags = r.byte(); r.u32(); if (flags & 1) r.u32(); }
  else if (kind === 2) { const flags = r.byte(); r.u32(); if (flags & 1) r.u32(); }
  else if (kind === 3) r.skip(2);
  else if (kind === 4) { r.byte(); r.u32(); }
  return r.pos;
}

/// The features the module was compiled with, from its `target_features` custom section (LLVM
/// writes it; wasm-bindgen keeps it): e.g. ["+simd128", "+bulk-memory"]. Empty when absent.
export function targetFeatures(bytes) {
  const r = reader(bytes);
  r.pos = 8;
  while (r.pos < bytes.length) {
    const id = r.byte();
    const end = r.u32() + r.pos;
    if (id === 0 && r.name() === "target_features") {
      const out = [];
      for (let n = r.u32(), k = 0; k < n; k++) { const prefix = String.fromCharCode(r.byte()); out.push(prefix + r.name()); }
      return out;
    }
    r.pos = end;
  }
  return [];
}
