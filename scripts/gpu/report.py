#!/usr/bin/env python3
"""One report of iftcl on a GPU: devices, check-device, golden parity, the STS tasks, bench
embed / train / loss, each beside a PyTorch reference. Writes report.json and report.md.

    report.py --iftcl BIN --model DIR --data DIR --golden FILE --out DIR [--work DIR] [--smoke]

Sizes are the SIZES below; `--smoke` takes the tiny ones (a software GPU such as lavapipe
finishes in minutes), and any size can be overridden by an environment variable
REPORT_<NAME> holding JSON (REPORT_TRAIN_STEPS=20, REPORT_TRAIN_BATCHES='[64]').
REPORT_DEVICE picks the wgpu device (default gpu), REPORT_PYTHON the Python that has torch.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render import markdown  # noqa: E402
from runner import Runner  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {
    "full": {"budget_s": 420, "embed_batches": [64, 256], "embed_runs": 3, "train_batches": [64, 256], "bert_batches": [64, 256],
             "train_warmup": 3, "train_steps": 10, "max_len": 32, "loss_k": [0, 256, 4096], "loss_d": [384, 768], "loss_warmup": 3,
             "loss_runs": 20, "sts_lines": None, "golden_batch": 64, "cap_check": 180, "cap_golden": 90, "cap_embed": 120, "cap_loss": 150, "cap_train": 150,
             "cap_torch": 240, "cap_sts": 150, "kernels_batch": 64, "cap_kernels": 120},
    # A software GPU runs at a few GFLOP/s on 2 shared cores: generous caps, tiny work (the
    # golden set's one 256-token sentence pads only its own batch of 4).
    "smoke": {"budget_s": 5400, "embed_batches": [8, 16], "embed_runs": 1, "train_batches": [4], "bert_batches": [2],
              "train_warmup": 0, "train_steps": 1, "max_len": 32, "loss_k": [0, 256], "loss_d": [384], "loss_warmup": 1,
              "loss_runs": 2, "sts_lines": 6, "golden_batch": 4, "cap_check": 900, "cap_golden": 900, "cap_embed": 900, "cap_loss": 900,
              "cap_train": 900, "cap_torch": 900, "cap_sts": 900, "kernels_batch": 4, "cap_kernels": 900},
}
BERT_BASE = os.path.join(HERE, "bert-base-config.json")


def sizes(smoke):
    s = dict(SIZES["smoke" if smoke else "full"])
    for k in s:
        v = os.environ.get(f"REPORT_{k.upper()}")
        if v is not None:
            s[k] = json.loads(v)
    return s


def small_sts(src, dst, lines):
    """A copy of the STS folder with each file cut to its first `lines` lines (SICK keeps its
    header): every task still loads, in seconds, on a software GPU."""
    for root, _, files in os.walk(src):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), src)
            os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(src, rel), encoding="utf-8", errors="surrogateescape") as f:
                head = [next(f, "") for _ in range(lines + 1)]
            with open(os.path.join(dst, rel), "w", encoding="utf-8", errors="surrogateescape") as f:
                f.writelines(head)
    return dst


def stsb_dev_sentences(sts_dir, path):
    with open(os.path.join(sts_dir, "STSBenchmark", "sts-dev.csv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{s}\n" for r in rows for s in (r[5], r[6]))
    return path


def parse_devices(text):
    adapters = [m.groups() for m in re.finditer(r"^gpu:(\d+)\s+(.+?)\s+\((\w+), (\w+), (.*?)\)(\s+\[software\])?$", text, re.M)]
    auto = re.search(r"^auto -> (.*)$", text, re.M)
    hw = [a for a in adapters if not a[5]] or adapters
    out = {"adapters": [{"index": int(a[0]), "name": a[1], "backend": a[2], "type": a[3], "driver": a[4], "software": bool(a[5])} for a in adapters],
           "auto": auto.group(1) if auto else None}
    if hw:
        out.update(gpu=hw[0][1], driver=hw[0][4])
    return out


def cosines(vectors_text, golden):
    import math

    got = [json.loads(line) for line in vectors_text.splitlines() if line.strip()]
    if len(got) != len(golden["embeddings"]):
        raise ValueError(f"{len(got)} vectors for {len(golden['embeddings'])} sentences")
    cos = []
    for a, b in zip(got, golden["embeddings"]):
        dot = sum(x * y for x, y in zip(a, b))
        cos.append(dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)))
    return {"sentences": len(cos), "min_cosine": min(cos), "mean_cosine": sum(cos) / len(cos)}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("iftcl", "model", "data", "golden", "out"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--work", help="scratch folder (default: a new temporary one); out/ gets only report.json, report.md, log.txt")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: a green run on a software GPU in minutes")
    a = ap.parse_args()
    s = sizes(a.smoke)
    os.makedirs(a.out, exist_ok=True)
    work = a.work or tempfile.mkdtemp(prefix="iftcl-report-")
    os.makedirs(work, exist_ok=True)
    for what, p in (("iftcl binary", a.iftcl), ("model folder", a.model), ("STS folder", os.path.join(a.data, "sts")),
                    ("corpus", os.path.join(a.data, "corpus/senteval-sentences.txt")), ("golden file", a.golden)):
        if not os.path.exists(p):
            sys.exit(f"error: the {what} is missing: {p}")
    dev = os.environ.get("REPORT_DEVICE", "gpu")
    env = {"RUST_LOG": "warn"}
    if a.smoke and "CUBECL_AUTOTUNE_LEVEL" not in os.environ:
        # Smoke runs test the paths, not the speed: a software GPU would spend most of its time
        # autotuning every matrix shape.
        env["CUBECL_AUTOTUNE_LEVEL"] = "minimal"
    r = Runner(s["budget_s"], os.path.join(a.out, "log.txt"), env)
    ift, model, corpus = a.iftcl, a.model, os.path.join(a.data, "corpus/senteval-sentences.txt")
    sts = os.path.join(a.data, "sts") if not s["sts_lines"] else small_sts(os.path.join(a.data, "sts"), os.path.join(work, "sts"), s["sts_lines"])
    with open(a.golden) as f:
        golden = json.load(f)
    rep = {"meta": {"smoke": a.smoke, "sizes": s, "device_spec": dev, "host": platform.node(), "cpus": os.cpu_count(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "budget_s": s["budget_s"], "libc": " ".join(platform.libc_ver()),
                    "autotune": r.env.get("CUBECL_AUTOTUNE_LEVEL", "default (balanced)"),
                    "sizes_line": f"train {s['train_warmup']}+{s['train_steps']} steps, embed {s['embed_runs']} runs, loss {s['loss_warmup']}+{s['loss_runs']} runs"}}

    st = r.run("version", [ift, "--version"], 30)
    rep["meta"]["iftcl"] = st.get("stdout", "").strip()
    if shutil.which("nvidia-smi"):
        st = r.run("nvidia-smi", ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], 30)
        rep["meta"]["nvidia_smi"] = st.get("stdout", "").strip() or st.get("error")
    st = r.run("devices", [ift, "devices"], 60)
    rep["devices"] = {**parse_devices(st.get("stdout", "")), "text": st.get("stdout", "")}
    if st["status"] == "ok" and not rep["devices"]["adapters"]:
        rep["devices"]["error"] = "wgpu sees no GPU adapter: every GPU step below fails (see docs/benchmarks.md, On a GPU)"
    st = r.run("check-device", [ift, "check-device", "--device", dev], s["cap_check"])
    out = st.get("stdout", "")
    total = sum(1 for line in out.splitlines() if re.match(r"^(ok|WRONG|NOT FINITE)\s", line))
    rep["check_device"] = {"status": st["status"], "total": total, "passed": sum(1 for line in out.splitlines() if line.startswith("ok "))}

    gold_in = os.path.join(work, "golden.jsonl")
    with open(gold_in, "w") as f:
        f.writelines(json.dumps(x) + "\n" for x in golden["sentences"])
    rep["golden"] = {}
    for side, d in (("gpu", dev), ("cpu", "cpu")):
        st = r.run(f"golden {side}", [ift, "embed", "--model", model, "--device", d, "--jsonl", "--input", gold_in,
                                          "--batch-size", s["golden_batch"]], s["cap_golden"])
        if st["status"] == "ok":
            rep["golden"][side] = cosines(st["stdout"], golden)

    rep["embed"] = []
    for b in s["embed_batches"]:
        j = os.path.join(work, f"embed-{b}.json")
        st = r.run(f"bench embed batch {b}", [ift, "bench", "embed", "--model", model, "--device", dev, "--batch-size", b,
                                              "--runs", s["embed_runs"], "--data", sts, "--json", j], s["cap_embed"])
        res = (load_json(j) or [{}])[0].get("result") if st["status"] == "ok" else None
        rep["embed"].append({"batch_size": b, "sentences_per_s": res and res["sentences_per_s"], "detail": res})

    rep["train"] = []

    def train(model_name, batch, extra):
        j = os.path.join(work, f"train-{len(rep['train'])}.json")
        st = r.run(f"bench train {model_name} batch {batch}", [ift, "bench", "train", "--model", model, "--device", dev, "--loss", "twins,infonce",
                   "--batch-size", batch, "--max-len", s["max_len"], "--warmup", s["train_warmup"], "--steps", s["train_steps"],
                   "--corpus", corpus, "--json", j, *extra], s["cap_train"])
        rows = (load_json(j) or []) if st["status"] == "ok" else []
        for loss in ("twins", "infonce"):
            row = next((x for x in rows if x["loss"] == loss), {})
            rep["train"].append({"model": model_name, "loss": loss, "batch_size": batch, "max_len": s["max_len"],
                                 "sentences_per_s": row.get("sentences_per_s"), "median_step_s": row.get("median_step_s"),
                                 "parameters": row.get("parameters"), "status": st["status"]})

    train("all-MiniLM-L6-v2", s["train_batches"][0], [])

    st = r.run("bench loss", [ift, "bench", "loss", "--device", dev, "--k", ",".join(map(str, s["loss_k"])), "--d", ",".join(map(str, s["loss_d"])),
                              "--warmup", s["loss_warmup"], "--runs", s["loss_runs"], "--json"], s["cap_loss"])
    rep["loss"] = json.loads(st["stdout"])["cases"] if st["status"] == "ok" else []

    rep["sts"] = {}
    for side, d in (("gpu", dev), ("cpu", "cpu")):
        j = os.path.join(work, f"sts-{side}.json")
        st = r.run(f"STS {side}", [ift, "eval", "--model", model, "--device", d, "--data", sts, "--dev", "--json", j], s["cap_sts"])
        if st["status"] == "ok":
            rep["sts"][side] = load_json(j)

    rep["torch"] = torch_reference(r, s, a, work, sts, corpus)
    rep["kernels"] = kernel_counts(r, s, a, ift, dev, work, corpus)

    for b in s["train_batches"][1:]:
        train("all-MiniLM-L6-v2", b, [])
    for b in s["bert_batches"]:
        train("BERT-base (random)", b, ["--random-weights", BERT_BASE])

    rep["meta"]["wall_s"] = time.monotonic() - r.start
    rep["steps"] = [{k: v for k, v in x.items() if k != "stdout"} for x in r.steps]
    r.close()
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    text = markdown(rep)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    bad = [x["name"] for x in r.steps if x["status"] != "ok" and x["name"] != "nvidia-smi"]
    if bad:
        sys.exit(f"error: {len(bad)} steps did not finish: {', '.join(bad)} (the report holds what the others measured)")


def kernel_counts(r, s, a, ift, dev, work, corpus):
    """Kernel launches and host reads per training step and embedding batch: `iftcl bench
    kernels` on the GPU, and PyTorch's CUDA kernels for the same step (torch_kernels.py)."""
    out = {}
    j = os.path.join(work, "kernels.json")
    st = r.run("bench kernels", [ift, "bench", "kernels", "--model", a.model, "--device", dev, "--batch-size", s["kernels_batch"],
                                 "--max-len", s["max_len"], "--corpus", corpus, "--json", j], s["cap_kernels"])
    out["iftcl"] = load_json(j) if st["status"] == "ok" else {"status": st["status"]}
    py = os.environ.get("REPORT_PYTHON", "python3")
    probe = subprocess.run([py, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True, text=True)
    if probe.returncode == 0:
        tj = os.path.join(work, "torch-kernels.json")
        device = "cuda" if probe.stdout.strip() == "True" else "cpu"
        st = r.run("PyTorch kernels", [py, os.path.join(HERE, "torch_kernels.py"), "--model", a.model, "--corpus", corpus, "--device", device,
                                       "--batch-size", s["kernels_batch"], "--max-len", s["max_len"], "--out", tj], s["cap_kernels"])
        out["torch"] = load_json(tj) if st["status"] == "ok" else {"status": st["status"]}
    return out


def torch_reference(r, s, a, work, sts, corpus):
    """The same steps in PyTorch on this machine (scripts/gpu/torch_reference.py), if torch imports."""
    py = os.environ.get("REPORT_PYTHON", "python3")
    probe = subprocess.run([py, "-c", "import torch, numpy, tokenizers; print(torch.cuda.is_available())"], capture_output=True, text=True)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        r.say(f"PyTorch reference: not run ({why}); the fixed H100 figures stand in")
        return {"status": f"not importable: {why}"}
    device = "cuda" if probe.stdout.strip() == "True" else "cpu"
    train = [{"loss": loss, "batch_size": b, "max_len": s["max_len"], "warmup": s["train_warmup"], "steps": s["train_steps"], "random_config": rc}
             for rc, batches in ((None, s["train_batches"]), (BERT_BASE, s["bert_batches"])) for b in batches for loss in ("twins", "infonce")]
    plan = {"model": a.model, "device": device, "golden": a.golden, "train": train, "train_corpus": corpus,
            "embed": {"sentences": stsb_dev_sentences(sts, os.path.join(work, "stsb-dev.txt")), "batch_sizes": s["embed_batches"], "runs": s["embed_runs"]},
            "loss": {"n": 64, "k": s["loss_k"], "d": s["loss_d"], "warmup": s["loss_warmup"], "runs": s["loss_runs"]}}
    with open(os.path.join(work, "torch-plan.json"), "w") as f:
        json.dump(plan, f, indent=1)
    out = os.path.join(work, "torch.json")
    st = r.run("PyTorch reference", [py, os.path.join(HERE, "torch_reference.py"), "--plan", os.path.join(work, "torch-plan.json"), "--out", out],
               s["cap_torch"], {"PYTHONUNBUFFERED": "1"})
    res = load_json(out) if st["status"] == "ok" else None
    return res or {"status": f"{st['status']}: {st.get('error', '')}"}


if __name__ == "__main__":
    main()
