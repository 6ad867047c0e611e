#!/usr/bin/env python3
"""The CPU peers of `iftcl embed` for scripts/bench-cpu-peers.sh, one contender per process:

    cpu_embed.py export MODEL_DIR OUT_DIR          model.onnx (fp32, BERT-fused) and model-int8.onnx
    cpu_embed.py embed CONTENDER SENTENCES OUT.npy  CONTENDER: torch | ort-fp32 | ort-int8
    cpu_embed.py score STS_DEV_CSV REF.npy VECTORS...

`embed` reads one sentence per line, embeds them in batches of 64 (sorted by length, as
sentence-transformers does), mean-pools and L2-normalises as all-MiniLM-L6-v2's modules say,
and prints one JSON line: seconds from process start to the model being ready (`startup_s`,
imports included) and seconds of embedding (`encode_s`, tokenisation included). Two threads
(`torch.set_num_threads(2)`, ORT `intra_op_num_threads=2`), like the 2-core machine's iftcl.

`score` prints, per vectors file, the worst cosine to REF (PyTorch's) and the Spearman
correlation x100 of the pairs' cosines with STS-B dev's gold scores (the lines are the pairs'
sentences, a then b, in the csv's order).
"""

import json
import os
import sys
import time

T0 = time.perf_counter()
BATCH = 64
THREADS = int(os.environ.get("PEER_THREADS", "2"))


def mean_pool(hidden, mask):
    import numpy as np

    m = mask[..., None].astype(np.float32)
    v = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)


def export(model_dir, out_dir):
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    os.makedirs(out_dir, exist_ok=True)
    # The eager attention (not SDPA) and the TorchScript exporter give the graph whose attention
    # ONNX Runtime's BERT optimizer fuses into one Attention op.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(["a short example", "and a somewhat longer example sentence"], padding=True, return_tensors="pt")

    class Hidden(torch.nn.Module):  # three positional inputs, one output
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    raw = os.path.join(out_dir, "model-raw.onnx")
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        Hidden(model), (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), raw, opset_version=17, dynamo=False,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
    )
    # ONNX Runtime's BERT fusions (attention, layer norm, GELU): its fastest fp32 graph.
    cfg = model.config
    opt = optimize_model(raw, model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size)
    fp32 = os.path.join(out_dir, "model.onnx")
    opt.save_model_to_file(fp32)
    # Dynamic int8, per output channel: what fastembed's and transformers.js's quantized models are.
    quantize_dynamic(
        fp32, os.path.join(out_dir, "model-int8.onnx"), weight_type=QuantType.QInt8, per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # the fused ops' outputs
    )
    os.remove(raw)
    tok.save_pretrained(out_dir)
    print(json.dumps({"fp32": fp32, "fused_ops": opt.get_fused_operator_statistics()}))


def embed(contender, sentences_path, out_path):
    import numpy as np

    sentences = open(sentences_path, encoding="utf-8").read().split("\n")
    if sentences and sentences[-1] == "":
        sentences.pop()
    model_dir = os.environ["PEER_MODEL"]
    if contender == "torch":
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(THREADS)
        model = SentenceTransformer(model_dir, device="cpu")
        ready = time.perf_counter()
        with torch.inference_mode():
            vectors = model.encode(sentences, batch_size=BATCH, convert_to_numpy=True)
    else:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_dir = os.environ["PEER_ONNX"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = THREADS
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        name = "model.onnx" if contender == "ort-fp32" else "model-int8.onnx"
        session = ort.InferenceSession(os.path.join(onnx_dir, name), opts, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        tok.enable_truncation(256)
        tok.enable_padding()
        ready = time.perf_counter()
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        parts = []
        for s in range(0, len(order), BATCH):
            idx = order[s:s + BATCH]
            enc = tok.encode_batch([sentences[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]
            parts.append((idx, mean_pool(hidden, mask)))
        vectors = np.zeros((len(sentences), parts[0][1].shape[1]), dtype=np.float32)
        for idx, v in parts:
            vectors[idx] = v
    done = time.perf_counter()
    np.save(out_path, np.asarray(vectors, dtype=np.float32))
    print(json.dumps({"contender": contender, "sentences": len(sentences), "startup_s": ready - T0, "encode_s": done - ready}))


def load_vectors(path):
    import numpy as np

    if path.endswith(".npy"):
        return np.load(path)
    with open(path, encoding="utf-8") as f:
        return np.array([json.loads(line) for line in f], dtype=np.float32)


def score(csv_path, ref_path, paths):
    import numpy as np

    gold = []
    with open(csv_path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            gold.append(float(cols[4]))
    ref = load_vectors(ref_path)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)

    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        xs = np.asarray(x)[order]
        i = 0
        while i < len(xs):  # average ranks for ties
            j = i
            while j + 1 < len(xs) and xs[j + 1] == xs[i]:
                j += 1
            r[order[i:j + 1]] = (i + j) / 2
            i = j + 1
        return r

    for p in paths:
        v = load_vectors(p)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        worst = float((v * ref).sum(1).min())
        cos = (v[0::2] * v[1::2]).sum(1)
        rho = float(np.corrcoef(ranks(cos), ranks(np.array(gold)))[0, 1])
        print(json.dumps({"vectors": p, "min_cosine_to_ref": worst, "sts_b_dev": 100 * rho}))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "export" and len(sys.argv) == 4:
        export(sys.argv[2], sys.argv[3])
    elif cmd == "embed" and len(sys.argv) == 5 and sys.argv[2] in ("torch", "ort-fp32", "ort-int8"):
        embed(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "score" and len(sys.argv) >= 5:
        score(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
