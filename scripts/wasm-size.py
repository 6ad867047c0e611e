#!/usr/bin/env python3
"""What a wasm module's size is made of: section sizes and code bytes per crate (from the
function-name section). Usage: scripts/wasm-size.py web/pkg/iftcl_wasm_bg.wasm"""
import sys, re, collections
data = open(sys.argv[1], 'rb').read()
def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1; r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i
i = 8; sections = []; code = None; names = {}; imports = 0
while i < len(data):
    sid = data[i]; i += 1; size, i = leb(data, i); start = i
    if sid == 0:
        nl, j = leb(data, i); nm = data[j:j+nl].decode(); sections.append(('custom:' + nm, size))
        if nm == 'name':
            j += nl
            while j < start + size:
                sub = data[j]; j += 1; ss, j = leb(data, j); e = j + ss
                if sub == 1:
                    cnt, j = leb(data, j)
                    for _ in range(cnt):
                        idx, j = leb(data, j); l, j = leb(data, j); names[idx] = data[j:j+l].decode('utf8', 'replace'); j += l
                j = e
    else:
        sections.append((sid, size))
        if sid == 2:
            cnt, j = leb(data, i)
            for _ in range(cnt):
                l, j = leb(data, j); j += l; l, j = leb(data, j); j += l; kind = data[j]; j += 1
                if kind == 0: _, j = leb(data, j); imports += 1
                elif kind == 1: j += 1; fl = data[j]; j += 1; _, j = leb(data, j); j = leb(data, j)[1] if fl & 1 else j
                elif kind == 2: fl = data[j]; j += 1; _, j = leb(data, j); j = leb(data, j)[1] if fl & 1 else j
                elif kind == 3: j += 2
        if sid == 10:
            cnt, j = leb(data, i); code = []
            for k in range(cnt):
                l, j = leb(data, j); code.append((imports + k, l)); j += l
    i = start + size
print("sections (MB):", [(s, round(z/1e6, 2)) for s, z in sections if z > 200000])
agg = collections.Counter()
for idx, l in code:
    n = names.get(idx, '?')
    # Rust's legacy mangling (Cargo's output): _ZN<len><crate>..., or _ZN<len>_$LT$<crate>...
    # for a trait impl; demangled names (wasm-bindgen's): crate::... or <crate::...
    mangled = re.match(r'_ZN([0-9]+)(.*)', n)
    if mangled:
        n = re.sub(r'^_\$LT\$', '', mangled.group(2)[:int(mangled.group(1))])
    n = re.sub(r'^<', '', n)
    m = re.match(r'([a-zA-Z_][a-zA-Z0-9_]*)', n)
    agg[m.group(1) if m else '?'] += l
tot = sum(l for _, l in code)
print("code total MB", round(tot/1e6, 2))
for k, v in agg.most_common(15): print(f"{k:30s} {v/1e6:6.2f} MB {100*v/tot:5.1f}%")
