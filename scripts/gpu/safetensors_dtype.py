#!/usr/bin/env python3
"""Reads and writes model.safetensors with numpy alone, and converts its floats between float32
and float16.

The GPU package carries all-MiniLM-L6-v2 as float16 (half the bytes); the device converts it
back to float32 before any run, since iftcl and the reference read float32.

    safetensors_dtype.py IN OUT --to f16|f32
"""

import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_safetensors(path):
    """{name: numpy array} of every tensor in the file (metadata dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8 : 8 + n])
    body = memoryview(data)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, which this reader does not handle")
        start, end = info["data_offsets"]
        if end > len(body):
            raise ValueError(f"{path}: tensor {name} ends at byte {end}, past the data ({len(body)} bytes)")
        arr = np.frombuffer(body[start:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = arr.reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, offset, chunks = {}, 0, []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def convert(src, dst, to):
    target = {"f16": np.float16, "f32": np.float32}[to]
    out = {}
    for name, arr in read_safetensors(src).items():
        if arr.dtype.kind == "f":
            conv = arr.astype(target)
            if not np.isfinite(conv).all():
                raise ValueError(f"{src}: tensor {name} does not fit {to} (largest |value| {np.abs(arr).max()})")
            arr = conv
        out[name] = arr
    write_safetensors(dst, out)
    return len(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--to", choices=["f16", "f32"], required=True)
    a = ap.parse_args()
    try:
        n = convert(a.src, a.dst, a.to)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"{a.dst}: {n} tensors as {a.to}")


if __name__ == "__main__":
    main()
