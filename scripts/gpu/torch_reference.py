#!/usr/bin/env python3
"""PyTorch reference figures for scripts/gpu-report.sh, measured on the same machine in the same
run: the training step of `iftcl bench train` (IFTCL or SimCSE, AdamW, docs/method.md's loss),
sentence-transformers-style embedding (`iftcl bench embed`), and the loss alone (`bench loss`).

    torch_reference.py --plan plan.json --out torch.json

The plan is {"model": DIR, "device": "cuda"|"cpu", "golden": FILE|null,
"train": [{"loss", "batch_size", "max_len", "warmup", "steps", "random_config"|null}],
"train_corpus": FILE, "embed": {"sentences": FILE, "batch_sizes": [..], "runs"},
"loss": {"n", "k": [..], "d": [..], "warmup", "runs"}}. Every case that fails is recorded with
its error and the others still run. Times: median, device synchronised, warm-up excluded.
"""

import argparse
import json
import random
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F

from torch_bert import Tokens, load_model, max_seq_length, sentence_vectors

TAU, BETA, LAMBDA, QUEUE, MAX_AGE = 0.05, 0.1, 0.1, 256, 4


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def augment(sentence, rng):
    """One edit of 10-30% of the words (repeat, delete or swap neighbours); returns (text, ratio)."""
    words = sentence.split()
    if not words:
        return sentence, 0.0
    if len(words) == 1:
        return f"{words[0]} {words[0]}", 1.0
    k = max(1, round(rng.uniform(0.1, 0.3) * len(words)))
    op = rng.randrange(3)
    picks = sorted(rng.sample(range(len(words)), min(k, len(words) - (op == 1))))
    if op == 0:
        out = [w for i, w in enumerate(words) for _ in range(2 if i in picks else 1)]
    elif op == 1:
        out = [w for i, w in enumerate(words) if i not in picks]
    else:
        out, picks = list(words), [i for i in picks if i + 1 < len(words)][: max(1, k // 2)]
        for i in picks:
            out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out), len(picks) / len(words)


class Queue:
    """The hippocampus: a ring of K detached vectors with the step that wrote each."""

    def __init__(self, k, d, device):
        self.vec = torch.zeros(k, d, device=device)
        self.step = torch.full((k,), -10**9, device=device)
        self.ptr, self.k = 0, k

    def fresh(self, now):
        return self.vec[self.step >= now - MAX_AGE]

    def push(self, rows, now):
        rows = rows.detach()[-self.k :]
        idx = (torch.arange(rows.shape[0], device=rows.device) + self.ptr) % self.k
        self.vec[idx] = rows
        self.step[idx] = now
        self.ptr = (self.ptr + rows.shape[0]) % self.k


def loss_fn(kind, a, p, f, ratio, queue_rows):
    n = a.shape[0]
    if kind == "infonce":
        return F.cross_entropy(a @ p.T / TAU, torch.arange(n, device=a.device))
    cand = torch.cat([p, f, queue_rows])
    logits = a @ cand.T / TAU
    own_f = torch.arange(n, device=a.device)
    logits[own_f, n + own_f] = float("-inf")
    nce = F.cross_entropy(logits, own_f)
    target = (a * p).sum(-1).detach() - BETA * ratio
    twins = F.relu(target - (a * f).sum(-1)).pow(2).mean()
    return nce + LAMBDA * twins


def trainer(plan, case, sentences, foreach=None):
    """The model and a function that runs training step `i` (batch `i` of `sentences` in order,
    cycling) and returns its loss tensor, unread: `iftcl bench train`'s step. `foreach`: AdamW's
    multi-tensor update (None: torch's default, which is foreach on CUDA and a loop over the
    parameters on the CPU)."""
    dev, n, loss = plan["device"], case["batch_size"], case["loss"]
    torch.manual_seed(0)
    model = load_model(plan["model"], dev, case.get("random_config"))
    model.train()
    tokens = Tokens(plan["model"], case["max_len"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, eps=1e-8, weight_decay=0.0, foreach=foreach)
    queue = Queue(QUEUE, model.embeddings["word_embeddings"].embedding_dim, dev) if loss == "twins" else None
    rng = random.Random(0)

    def step(i):
        batch = [sentences[(i * n + j) % len(sentences)] for j in range(n)]
        rows = batch + batch
        if loss == "twins":
            aug = [augment(s, rng) for s in batch]
            rows += [x for x, _ in aug]
            ratio = torch.tensor([r for _, r in aug], device=dev)
        ids, keep = tokens.batch(rows, dev)
        v = sentence_vectors(model, ids, keep)
        a, p = v[:n], v[n : 2 * n]
        if loss == "twins":
            f = v[2 * n :]
            value = loss_fn(loss, a, p, f, ratio, queue.fresh(i))
        else:
            value = loss_fn(loss, a, p, None, None, None)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if queue is not None:
            queue.push(torch.cat([p, f]), i)
        return value

    return model, step


def train_case(plan, case, sentences):
    dev, n = plan["device"], case["batch_size"]
    model, step = trainer(plan, case, sentences)
    times = []
    for i in range(case["warmup"] + case["steps"]):
        sync(dev)
        t = time.perf_counter()
        last = step(i).item()
        sync(dev)
        if i >= case["warmup"]:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    params = sum(p.numel() for p in model.parameters())
    return {**case, "sentences_per_s": n / med, "median_step_s": med, "step_times_s": times, "last_loss": last, "parameters": params}


@torch.inference_mode()
def embed_all(model, tokens, texts, batch_size, dev):
    """sentence-transformers' encode: longest first, batches, vectors back on the host."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = [None] * len(texts)
    for s in range(0, len(order), batch_size):
        chunk = order[s : s + batch_size]
        ids, keep = tokens.batch([texts[i] for i in chunk], dev)
        vecs = sentence_vectors(model, ids, keep).cpu()
        for j, i in enumerate(chunk):
            out[i] = vecs[j]
    return out


def embed_cases(plan):
    dev, cfg = plan["device"], plan["embed"]
    model = load_model(plan["model"], dev).eval()
    tokens = Tokens(plan["model"], max_seq_length(plan["model"]))
    with open(cfg["sentences"], encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    out = []
    for b in cfg["batch_sizes"]:
        embed_all(model, tokens, texts, b, dev)
        times = []
        for _ in range(max(1, cfg["runs"])):
            sync(dev)
            t = time.perf_counter()
            embed_all(model, tokens, texts, b, dev)
            sync(dev)
            times.append(time.perf_counter() - t)
        out.append({"batch_size": b, "sentences": len(texts), "runs_s": times, "sentences_per_s": len(texts) / statistics.median(times)})
    golden = None
    if plan.get("golden"):
        with open(plan["golden"]) as f:
            g = json.load(f)
        got = embed_all(model, tokens, g["sentences"], 64, dev)
        cos = [float(F.cosine_similarity(x, torch.tensor(y), dim=0)) for x, y in zip(got, g["embeddings"])]
        golden = {"sentences": len(cos), "min_cosine": min(cos), "mean_cosine": sum(cos) / len(cos)}
    return out, golden


def loss_cases(plan):
    dev, cfg = plan["device"], plan["loss"]
    out = []
    for d in cfg["d"]:
        for k in cfg["k"]:
            n = cfg["n"]
            gen = torch.Generator().manual_seed(n * 31 + k * 7 + d)
            unit = lambda rows: F.normalize(torch.randn(rows, d, generator=gen), dim=-1).to(dev)
            a0, p0, f0, q = unit(n), unit(n), unit(n), unit(k)
            ratio = torch.full((n,), 0.2, device=dev)
            times = []
            for i in range(cfg["warmup"] + max(1, cfg["runs"])):
                sync(dev)
                t = time.perf_counter()
                a, p, f = (x.clone().requires_grad_() for x in (a0, p0, f0))
                loss_fn("twins", a, p, f, ratio, q).backward()
                sync(dev)
                if i >= cfg["warmup"]:
                    times.append(time.perf_counter() - t)
            out.append({"n": n, "k": k, "d": d, "ms": 1e3 * statistics.median(times)})
    return out


def guarded(name, fn, errors):
    try:
        return fn()
    except Exception as e:  # one failed case must not lose the others
        errors.append({"case": name, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc(limit=3)})
        print(f"torch reference: {name} failed: {e}", file=sys.stderr)
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.plan) as f:
        plan = json.load(f)
    dev = plan["device"]
    if dev.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: the plan asks for cuda but torch sees no CUDA device")
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu",
            "tf32_matmul": bool(dev.startswith("cuda") and torch.backends.cuda.matmul.allow_tf32), "dtype": "float32",
            "attention": "scaled_dot_product_attention" if hasattr(F, "scaled_dot_product_attention") else "softmax(QK^T)V"}
    errors, result = [], {"info": info}
    if plan.get("embed"):
        r = guarded("embed", lambda: embed_cases(plan), errors)
        result["embed"], result["golden"] = r if r else (None, None)
    if plan.get("train"):
        with open(plan["train_corpus"], encoding="utf-8") as f:
            sentences = [line.strip() for line in f if line.strip()]
        result["train"] = []
        for c in plan["train"]:
            name = f"train {c['loss']} batch {c['batch_size']}" + (" random" if c.get("random_config") else "")
            r = guarded(name, lambda: train_case(plan, c, sentences), errors)
            if r:
                result["train"].append(r)
                print(f"torch reference: {name}: {r['sentences_per_s']:.1f} sentences/s", file=sys.stderr)
    if plan.get("loss"):
        result["loss"] = guarded("loss", lambda: loss_cases(plan), errors)
    result["errors"] = errors
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
