//! The GPU work of a training step and of an embedding batch, pinned: `iftcl bench kernels` on
//! the wgpu adapter (lavapipe here) counts every kernel launched, exactly, and a change that
//! adds launches fails here with the count it found (docs/benchmarks.md "GPU work per step").
//!
//! The model is the tiny seeded BERT (2 layers, width 64) at batch 16: the same graph as
//! all-MiniLM-L6-v2's, per layer, in a few seconds. Counts do not depend on time, but a few
//! depend on what autotune picked on this machine (a fused matmul with its element-wise tail,
//! or the matmul and the tail apart): the bounds leave that room, about 5%, and no more.

use crate::common::*;

/// Launches of one steady training step (tiny BERT, batch 16, length 32, Twins Loss with the
/// fused kernels and the queue). Measured 335 (warm autotune cache) and 348 (a fresh one);
/// 354 before the GPU LayerNorm (`model/layer_norm.rs`), and four times as many with the
/// step's rows in four length groups, as GPUs had them before.
const STEP_LAUNCHES: u64 = 365;
/// Launches of one steady embedding batch of the same 16 sentences: measured 52 with burn's
/// fused attention on its flash kernel, 61 and 69 with the attention's separate ops (before it,
/// or where autotune prefers burn's own separate ops to the flash kernel).
const EMBED_LAUNCHES: u64 = 73;

/// A corpus whose every batch of 16 holds one sentence longer than the token limit and 15
/// short ones of other lengths: in one length group every step has the same shapes (the long
/// one sets the padded length), in several the groups' lengths change from step to step.
fn mixed_corpus(dir: &std::path::Path) -> std::path::PathBuf {
    let words = ["river", "stone", "quiet", "morning", "light", "garden", "window", "paper", "music", "table", "bridge", "cloud"];
    let mut lines = Vec::new();
    for batch in 0..3 {
        lines.push((0..60).map(|i| words[(i * 7 + batch) % words.len()]).collect::<Vec<_>>().join(" "));
        for row in 1..16 {
            let n = 3 + (row * 5 + batch * 3) % 17;
            lines.push((0..n).map(|i| words[(i * 5 + row + batch) % words.len()]).collect::<Vec<_>>().join(" "));
        }
    }
    let p = dir.join("corpus.txt");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn launches(counts: &serde_json::Value) -> u64 {
    counts["launches"].as_object().expect("launches by kernel").values().map(|v| v.as_u64().unwrap()).sum()
}

#[test]
fn wgpu_training_step_and_embedding_batch_launch_no_more_kernels_than_pinned() {
    let t = TempDir::new("kernel-counts");
    // The tests' CubeCL settings (its on-disk cache in the user's cache folder).
    std::fs::copy(root().join("tests/cubecl.toml"), t.0.join("cubecl.toml")).unwrap();
    let corpus = mixed_corpus(&t.0);
    let json = t.0.join("counts.json");
    let model = tiny_dir().join("bert-cls-normalize");
    let args = [
        "bench", "kernels", "--model", model.to_str().unwrap(), "--device", "gpu", "--batch-size", "16", "--steps", "3",
        "--embed-runs", "3", "--any-length", "--corpus", corpus.to_str().unwrap(), "--json", json.to_str().unwrap(),
    ];
    let o = iftcl_in(&t.0, &args);
    assert!(o.status.success(), "bench kernels: {}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let table = stdout(&o);

    // Nothing launches before the first step but what loading needs.
    let startup = launches(&r["startup"]) + launches(&r["tuner_setup"]);
    assert!(startup <= 1000, "{startup} launches before the first step\n{table}");

    let steps: Vec<u64> = r["steps"].as_array().unwrap().iter().map(launches).collect();
    let steady = &r["steady_step"];
    assert!(!steady.is_null(), "steps 2 and 3 launched different kernels ({steps:?}): the step's shapes changed\n{table}");
    let n = launches(steady);
    assert!(n <= STEP_LAUNCHES, "a training step launched {n} kernels, more than the {STEP_LAUNCHES} pinned\n{table}");
    assert_eq!(steady["host_reads"], 1, "a training step reads the device once (its losses)\n{table}");
    // The fused loss: its five WGSL kernels, once each (forward and backward).
    assert_eq!(steady["launches"]["SourceKernel"], 5, "{table}");
    // No start-up probe or autotune candidate is left in a steady step.
    let probes: Vec<&String> = steady["launches"].as_object().unwrap().keys().filter(|k| k.contains("Overhead") || k.contains("Throughput")).collect();
    assert!(probes.is_empty(), "probe kernels {probes:?} in a steady step\n{table}");

    let embed = &r["steady_embed"];
    assert!(!embed.is_null(), "embedding the same batch again launched different kernels\n{table}");
    let e = launches(embed);
    assert!(e <= EMBED_LAUNCHES, "an embedding batch launched {e} kernels, more than the {EMBED_LAUNCHES} pinned\n{table}");
    assert_eq!(embed["host_reads"], 1, "an embedding batch reads the device once\n{table}");
}
