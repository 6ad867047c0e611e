"""The report's Markdown: each figure beside its PyTorch reference (same machine, same run, when
torch was importable; else the fixed H100 figures below), the ratios and the goals.

    render.py report.json        # prints the Markdown of a report again
"""

import json
import sys

# PyTorch eager, fp32, one H100, length 32, AdamW (sentences/s): (low, high) of the measured range.
FALLBACK = {
    ("train", "all-MiniLM-L6-v2", "twins", 64): (850, 950),
    ("train", "all-MiniLM-L6-v2", "infonce", 64): (1300, 1530),
    ("train", "all-MiniLM-L6-v2", "twins", 256): (2065, 2065),
    ("train", "all-MiniLM-L6-v2", "infonce", 256): (3681, 3681),
    ("train", "BERT-base (random)", "twins", 64): (459, 459),
    ("train", "BERT-base (random)", "twins", 256): (673, 673),
    ("embed", "all-MiniLM-L6-v2", None, 64): (5700, 7000),
}
GOAL_TRAIN, GOAL_EMBED, GOAL_FUSED, GOAL_STS = 1.5, 1.0, 3.0, 0.1

# docs/benchmarks.md: iftcl on the CPU (burn flex) with the float32 weights, equal to PyTorch's.
CPU_FIGURES = {"STS12": 72.37, "STS13": 80.60, "STS14": 75.59, "STS15": 85.39, "STS16": 78.99,
               "STS-B": 82.03, "SICK-R": 77.15, "avg": 78.87, "STS-B-dev": 86.72}
TASKS = ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "avg", "STS-B-dev"]
LOSS_NAMES = {"twins": "IFTCL", "infonce": "SimCSE"}


def fmt(x, digits=1):
    if x is None:
        return "—"
    # Small figures (software GPUs, smoke sizes) keep three significant digits.
    return f"{x:.3g}" if digits == 1 and abs(x) < 10 else f"{x:,.{digits}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def verdict(value, goal):
    if value is None:
        return "—"
    return "yes" if value >= goal else "no"


def torch_train(report, model, loss, batch):
    for t in (report.get("torch") or {}).get("train") or []:
        if t["loss"] == loss and t["batch_size"] == batch and bool(t.get("random_config")) == (model != "all-MiniLM-L6-v2"):
            return t["sentences_per_s"]
    return None


def torch_embed(report, batch):
    for e in (report.get("torch") or {}).get("embed") or []:
        if e["batch_size"] == batch:
            return e["sentences_per_s"]
    return None


def speed_row(label, ours, same_run, fallback, goal):
    """| figure | iftcl | PyTorch here | ratio | PyTorch H100 | ratio | goal | met |"""
    r_here = ratio(ours, same_run)
    if fallback:
        lo, hi = fallback
        fb = fmt(lo, 0) if lo == hi else f"{lo:,}–{hi:,}"
        r_fb = None if ours is None else (f"{ours / lo:.2f}x" if lo == hi else f"{ours / hi:.2f}–{ours / lo:.2f}x")
    else:
        fb, r_fb, hi = "—", None, None
    # Judged against the same-run figure when there is one, else the top of the fallback range.
    judged = r_here if r_here is not None else ratio(ours, hi)
    return (f"| {label} | {fmt(ours)} | {fmt(same_run)} | {fmt(r_here, 2) + 'x' if r_here else '—'} | {fb} | "
            f"{r_fb or '—'} | ≥ {goal:g}x | {verdict(judged, goal)} |")


def speed_table(report):
    lines = ["| figure (sentences/s unless said) | iftcl | PyTorch, same run | ratio | PyTorch, H100 (fixed) | ratio | goal | met |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for e in report.get("embed") or []:
        b = e["batch_size"]
        lines.append(speed_row(f"embed all-MiniLM-L6-v2, batch {b}", e.get("sentences_per_s"), torch_embed(report, b),
                               FALLBACK.get(("embed", "all-MiniLM-L6-v2", None, b)), GOAL_EMBED))
    for t in report.get("train") or []:
        key = ("train", t["model"], t["loss"], t["batch_size"])
        label = f"train {LOSS_NAMES[t['loss']]} {t['model']}, batch {t['batch_size']}, len {t['max_len']}"
        lines.append(speed_row(label, t.get("sentences_per_s"), torch_train(report, t["model"], t["loss"], t["batch_size"]),
                               FALLBACK.get(key), GOAL_TRAIN))
    torch_loss = {(c["k"], c["d"]): c["ms"] for c in (report.get("torch") or {}).get("loss") or []}
    for c in report.get("loss") or []:
        tl = torch_loss.get((c["k"], c["d"]))
        lines.append(f"| loss N={c['n']} K={c['k']} d={c['d']}: fused / plain ms (PyTorch ms) | {c['fused_ms']:.3f} / {c['unfused_ms']:.3f} | "
                     f"{fmt(tl, 3)} | {c['speedup']:.2f}x fused vs plain | — | — | ≥ {GOAL_FUSED:g}x | {verdict(c['speedup'], GOAL_FUSED)} |")
    return lines


def sts_table(report):
    sts = report.get("sts") or {}
    gpu, cpu = sts.get("gpu") or {}, sts.get("cpu") or {}
    if not gpu:
        return []
    # Smoke runs cut the STS files, so the full data's figures do not apply to them.
    docs = not report["meta"]["smoke"]
    lines = ["| task | GPU | CPU, same run and weights | GPU − CPU |" + (" CPU, docs/benchmarks.md (float32 weights) |" if docs else ""),
             "|---|---:|---:|---:|" + ("---:|" if docs else "")]
    for t in TASKS:
        if t not in gpu:
            continue
        g, c = gpu[t], cpu.get(t)
        d = None if c is None else g - c
        lines.append(f"| {t} | {g:.2f} | {fmt(c, 2)} | {'—' if d is None else f'{d:+.2f}'} |" + (f" {fmt(CPU_FIGURES.get(t), 2)} |" if docs else ""))
    return lines


def correctness_lines(report):
    out = []
    dev = report.get("devices") or {}
    out.append(f"- device: {dev.get('gpu', '—')} (driver {dev.get('driver', '—')}); `iftcl devices`: auto -> {dev.get('auto', '—')}")
    cd = report.get("check_device") or {}
    out.append(f"- check-device: {cd.get('passed', '—')} of {cd.get('total', '—')} gradient checks passed ({cd.get('status', 'not run')})")
    g = report.get("golden") or {}
    for side in ("gpu", "cpu"):
        r = g.get(side)
        if r:
            out.append(f"- golden parity ({side}, {r['sentences']} sentences): worst cosine to the reference {r['min_cosine']:.7f}, mean {r['mean_cosine']:.7f}")
    tg = (report.get("torch") or {}).get("golden")
    if tg:
        out.append(f"- golden parity (PyTorch reference model): worst cosine {tg['min_cosine']:.7f}")
    sts = report.get("sts") or {}
    if sts.get("gpu"):
        diffs = [abs(sts["gpu"][t] - sts["cpu"][t]) for t in TASKS if t in sts["gpu"] and t in (sts.get("cpu") or {})]
        worst = max(diffs) if diffs else None
        out.append(f"- STS ({len(diffs)} figures) on the GPU in {sts['gpu'].get('seconds', '—')} s "
                   f"(CPU: {(sts.get('cpu') or {}).get('seconds', '—')} s); largest |GPU − CPU| {fmt(worst, 3)} "
                   f"(goal ≤ {GOAL_STS}): {verdict(None if worst is None else GOAL_STS - worst, 0)}")
    return out


def kernel_lines(report):
    """Kernel launches per training step and per embedding batch (`bench kernels`), beside
    PyTorch's (CUDA kernels on a GPU, aten operators on the CPU)."""
    k = report.get("kernels") or {}
    ours, torch = k.get("iftcl") or {}, k.get("torch") or {}
    if not ours.get("steps"):
        return [f"- kernel counts: {ours.get('status', 'not run')}"]
    total = lambda c: sum((c or {}).get("launches", {}).values()) if c else None
    step, emb = ours.get("steady_step"), ours.get("steady_embed")
    t_step, t_emb = torch.get("train_step") or {}, torch.get("embed_batch") or {}
    theirs = lambda c: c.get("cuda_kernels", f"{c.get('dispatched', '—')}–{c.get('leaf', '—')} aten ops") if c else "—"
    return [f"- kernels per training step (batch {ours.get('batch_size')}, length {ours.get('max_len')}): iftcl {fmt(total(step), 0)} "
            f"(host reads {(step or {}).get('host_reads', '—')}), PyTorch {theirs(t_step)} (host syncs {t_step.get('host_syncs', '—')}); "
            f"per embedding batch: iftcl {fmt(total(emb), 0)}, PyTorch {theirs(t_emb)}"]


def markdown(report):
    m = report["meta"]
    t = report.get("torch") or {}
    info = t.get("info") or {}
    torch_line = (f"PyTorch {info.get('torch')} on {info.get('device')} ({info.get('dtype')}, TF32 matmul {info.get('tf32_matmul')}, "
                  f"attention {info.get('attention')})" if info else f"PyTorch reference: {t.get('status', 'not run')}")
    lines = [f"# iftcl on a GPU{' (SMOKE sizes: the figures mean nothing)' if m['smoke'] else ''}", "",
             f"{m['host']}; {m['cpus']} CPU cores; {m.get('nvidia_smi') or 'no nvidia-smi'}; {m.get('iftcl', 'iftcl —')}; autotune {m.get('autotune')}",
             f"report {m['wall_s']:.0f} s of {m['budget_s']} s budget; sizes: {m['sizes_line']}",
             f"{torch_line}", ""]
    lines += correctness_lines(report) + kernel_lines(report) + [""] + speed_table(report) + [""] + sts_table(report)
    # nvidia-smi is information only (the header line says what it gave).
    failed = [s for s in report.get("steps", []) if s["status"] != "ok" and s["name"] != "nvidia-smi"]
    if failed:
        lines += ["", "Steps that did not finish:", ""]
        lines += [f"- {s['name']}: {s['status']}: {s.get('error', '')}" for s in failed]
    for e in t.get("errors") or []:
        lines.append(f"- PyTorch reference {e['case']}: {e['error']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: render.py report.json")
    with open(sys.argv[1]) as f:
        print(markdown(json.load(f)), end="")
