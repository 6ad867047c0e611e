#!/usr/bin/env python3
"""PyTorch eager's GPU work for the step `iftcl bench kernels` counts: one IFTCL (or SimCSE)
training step and one embedding batch, the same model, batch, length and sentences.

    torch_kernels.py --model DIR --corpus FILE [--loss twins] [--batch-size 64] [--max-len 32]
                     [--steps 3] [--device cpu|cuda] --out counts.json

On CUDA the kernels are counted exactly (the profiler's CUDA kernel events, and the
device-to-host copies and synchronisations). On the CPU nothing launches a kernel, so the count
is of the aten operators the step dispatches (tokenisation, host-side work, left out), at two
levels, both printed:

- `dispatched`: the aten operators called from Python or from the autograd engine (their own
  decomposition into further aten operators not counted). Most launch one CUDA kernel each;
  composite ones (cross_entropy, say) launch two or three.
- `leaf`: the aten operators that call no other aten operator, less those that only make a view
  or read metadata (view, reshape, transpose, expand, slice, empty, ...): an upper estimate,
  since on the CPU some operators decompose where CUDA has one kernel (dropout: bernoulli_,
  div_, mul).

AdamW's update counts one per foreach operator (on CUDA one multi-tensor kernel per chunk of
parameters: a few per operator at 22M parameters; on the CPU a loop over the tensors, not
counted). Host syncs: `aten::_local_scalar_dense` (`.item()`) and `aten::nonzero` (boolean
indexing such as the queue's age filter, whose output size the host must learn), outside the
optimizer, whose step counters live on the host on CUDA too.

The sentences are chosen as `iftcl bench kernels` chooses them: the first ones of the corpus
at least 1.5 × max_len tokens long, so that every view is truncated to max_len and every step
has the same shapes. AdamW runs its multi-tensor (foreach) update, torch's default on CUDA.
"""

import argparse
import json
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import Tokens, load_model, max_seq_length, sentence_vectors  # noqa: E402
from torch_reference import trainer  # noqa: E402

# Operators that make a view, read metadata or allocate: no kernel on any device.
NO_KERNEL = {
    "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::_unsafe_view", "aten::as_strided",
    "aten::t", "aten::transpose", "aten::permute", "aten::expand", "aten::expand_as", "aten::unsqueeze",
    "aten::squeeze", "aten::slice", "aten::select", "aten::narrow", "aten::split", "aten::unbind",
    "aten::chunk", "aten::detach", "aten::detach_", "aten::alias", "aten::lift_fresh", "aten::empty",
    "aten::empty_like", "aten::empty_strided", "aten::resize_", "aten::set_", "aten::result_type",
    "aten::is_nonzero", "aten::numpy_T", "aten::contiguous", "aten::to", "aten::_to_copy_view",
    "aten::view_as", "aten::flatten", "aten::unflatten", "aten::movedim", "aten::split_with_sizes",
    "aten::_has_compatible_shallow_copy_type", "aten::broadcast_tensors", "aten::align_tensors",
    "aten::_nested_tensor_from_mask_left_aligned", "aten::requires_grad_", "aten::resolve_conj",
    "aten::resolve_neg",
}
IDENTITY_WHEN_OFF = {"aten::dropout", "aten::feature_dropout", "aten::alpha_dropout"}
SYNCS = {"aten::_local_scalar_dense", "aten::nonzero"}


def long_sentences(model_dir, corpus, max_len, n):
    tokens = Tokens(model_dir, max_seq_length(model_dir))
    out = []
    with open(corpus, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    for start in range(0, len(lines), 4096):
        chunk = lines[start : start + 4096]
        for text, enc in zip(chunk, tokens.tok.encode_batch(chunk)):
            if len(enc.ids) * 2 >= max_len * 3:
                out.append(text)
                if len(out) == n:
                    return out
    sys.exit(f"error: {corpus}: only {len(out)} sentences are at least {max_len * 3 // 2} tokens long; {n} are needed")


def under(e, region):
    p = e.cpu_parent
    while p is not None:
        if p.name.startswith(region):
            return True
        p = p.cpu_parent
    return False


def under_optimizer(e):
    return under(e, "Optimizer.step")


def count(prof, on_cuda):
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CPU]
    # AdamW's update is counted apart: on the CPU its foreach operators fall back to a loop over
    # the parameters (one copy_, sqrt, ... per tensor), and its `.item()` calls read step
    # counters that live on the host on CUDA too. On CUDA each foreach operator is one
    # multi-tensor kernel per chunk of parameters (a few per operator for 22M parameters).
    optimizer = [e for e in events if e.name.startswith("aten::_foreach_") and under_optimizer(e)
                 and not (e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::_foreach_"))]
    # Tokenisation fills the batch on the host and copies it over once: no kernel.
    aten = [e for e in events if e.name.startswith("aten::") and not under_optimizer(e) and not under(e, "tokenize")]
    ids = {id(e) for e in aten}

    def aten_parent(e):
        p = e.cpu_parent
        while p is not None:
            if id(p) in ids:
                return True
            p = p.cpu_parent
        return False

    def computes(e):
        # An operator that calls nothing at all and is known to return its input unchanged
        # when disabled (dropout with p = 0 or in eval mode) launches nothing.
        return e.name not in NO_KERNEL and not (e.name in IDENTITY_WHEN_OFF and not e.cpu_children)

    dispatched = [e for e in aten if not aten_parent(e) and computes(e)]
    leaf = [e for e in aten if computes(e) and not any(c.name.startswith("aten::") and c.name not in NO_KERNEL for c in e.cpu_children)]
    syncs = [e for e in aten if e.name in SYNCS]
    by = lambda evs: dict(sorted({n: sum(1 for e in evs if e.name == n) for n in {e.name for e in evs}}.items()))
    out = {"dispatched": len(dispatched) + len(optimizer), "leaf": len(leaf) + len(optimizer), "host_syncs": len(syncs),
           "optimizer_foreach_ops": len(optimizer), "dispatched_by_op": by(dispatched), "leaf_by_op": by(leaf),
           "optimizer_by_op": by(optimizer), "syncs_by_op": by(syncs)}
    if on_cuda:
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        out["cuda_kernels"] = len(kernels)
        out["cuda_by_kernel"] = by(kernels)
    return out


def profiled(fn, on_cuda):
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with profile(activities=acts) as prof:
        fn()
        if on_cuda:
            torch.cuda.synchronize()
    return count(prof, on_cuda)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--loss", default="twins", choices=["twins", "infonce"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-len", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.steps < 2:
        sys.exit("error: --steps must be at least 2 (the first step is not counted)")
    if a.threads:
        torch.set_num_threads(a.threads)
    on_cuda = a.device.startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        sys.exit("error: --device cuda but torch sees no CUDA device")
    sentences = long_sentences(a.model, a.corpus, a.max_len, a.batch_size * a.steps)
    plan = {"model": a.model, "device": a.device}
    case = {"loss": a.loss, "batch_size": a.batch_size, "max_len": a.max_len}
    model, step = trainer(plan, case, sentences, foreach=True)
    # The loss read (.item()) is part of the step, as in `iftcl train`.
    for i in range(a.steps - 1):
        step(i).item()
    train = profiled(lambda: step(a.steps - 1).item(), on_cuda)

    model.eval()
    tokens = Tokens(a.model, max_seq_length(a.model))
    batch = sentences[: a.batch_size]

    @torch.inference_mode()
    def embed():
        ids, keep = tokens.batch(batch, a.device)
        sentence_vectors(model, ids, keep).cpu()

    embed()
    emb = profiled(embed, on_cuda)
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if on_cuda else "cpu",
              "model": a.model, "loss": a.loss, "batch_size": a.batch_size, "max_len": a.max_len,
              "train_step": train, "embed_batch": emb}
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    for name, c in (("training step", train), ("embedding batch", emb)):
        cuda = f", CUDA kernels {c['cuda_kernels']}" if on_cuda else ""
        print(f"PyTorch {torch.__version__} {result['device']}: {name}: aten dispatched {c['dispatched']}, "
              f"leaf {c['leaf']}{cuda}, host syncs {c['host_syncs']}")


if __name__ == "__main__":
    main()
