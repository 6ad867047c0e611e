//! `iftcl train` end to end on a small corpus: exact resume after a kill, checkpoint layout,
//! and bad input (each a clear error, nothing lost).

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The bytes of `file` in each of two folders, which must be identical.
fn assert_same_bytes(a: &Path, b: &Path, file: &str) {
    let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
    assert!(x == y, "{file} differs between {} and {} ({} and {} bytes)", a.display(), b.display(), x.len(), y.len());
}

/// The optimizer state of a checkpoint: its scalars, and each tensor's name, shape and bytes
/// by name. (The file's byte layout follows a hash map's order, which differs from process to
/// process, so two equal states need not be equal files.)
type OptimizerState = (std::collections::BTreeMap<String, burn_pack::Scalar>, std::collections::BTreeMap<String, Vec<u8>>);

fn optimizer_state(dir: &Path) -> OptimizerState {
    let reader = burn_pack::Reader::from_file_exact(dir.join("optimizer.bpk")).unwrap();
    let scalars = reader.scalars().clone();
    let tensors = reader
        .into_tensors()
        .unwrap()
        .into_iter()
        .map(|t| {
            let (name, _, shape, _, bytes) = t.into_parts().unwrap();
            (format!("{name} {shape:?}"), bytes[..].to_vec())
        })
        .collect();
    (scalars, tensors)
}

#[test]
fn a_killed_run_resumes_exactly() {
    let t = TempDir::new("resume");
    let corpus = small_corpus(&t.0);
    let (full, killed) = (t.0.join("full"), t.0.join("killed"));
    let steps = 32;

    let o = iftcl(&["train", "--config", train_toml(&t.0, &corpus, &full, steps).to_str().unwrap(), "--no-eval", "--quiet"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = losses(&full);
    assert_eq!(reference.len(), 32);
    assert!(reference.iter().all(|(_, l)| l.is_finite()));

    // The same run, ended abruptly (abort: no unwinding, nothing flushed) right after step 12,
    // two steps past its checkpoint of step 10: always the same point, unlike a timed kill.
    let o = killed_run(&train_toml(&t.0, &corpus, &killed, steps), 12);
    assert!(!o.status.success(), "the run should have been cut off");
    assert_eq!(o.status.code(), None, "ended by a signal (abort), not an exit: {}", stderr(&o));
    assert_eq!(losses(&killed).len(), 12, "the cut-off run logged steps 1..12");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("last/trainer_state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 10, "the last checkpoint is step 10's");

    let o = iftcl(&["train", "--resume", killed.join("last").to_str().unwrap(), "--out", killed.to_str().unwrap(), "--device", "cpu", "--quiet"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = losses(&killed);
    assert_eq!(resumed.len(), 32, "the resumed metrics keep steps 1..10 and add 11..32 once");
    // The CPU backend repeats its arithmetic exactly: every loss of steps 11..32 is the same
    // number, and so are the final weights, optimizer state and queue, byte for byte (the
    // optimizer's tensor by tensor).
    assert_eq!(resumed, reference, "losses of the uninterrupted run vs the resumed one");
    for file in ["model.safetensors", "queue.safetensors", "trainer_state.json"] {
        assert_same_bytes(&full.join("last"), &killed.join("last"), file);
    }
    let (a, b) = (optimizer_state(&full.join("last")), optimizer_state(&killed.join("last")));
    assert_eq!(a.0, b.0, "optimizer scalars");
    // The same tensors by name and shape, then each one's bytes, looked up by its name.
    assert_eq!(a.1.keys().collect::<Vec<_>>(), b.1.keys().collect::<Vec<_>>(), "optimizer tensors (name and shape)");
    for (name, x) in &a.1 {
        assert!(*x == b.1[name], "optimizer state {name} differs between the uninterrupted run and the resumed one");
    }
}

#[test]
fn checkpoints_keep_the_sentence_transformers_layout() {
    let t = TempDir::new("layout");
    let (_, out) = trained(&t, "5");
    for dir in ["last", "best"] {
        for f in ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
                  "config_sentence_transformers.json", "sentence_bert_config.json"] {
            assert!(out.join(dir).join(f).is_file(), "{dir}/{f} missing");
        }
    }
    for f in ["optimizer.bpk", "queue.safetensors", "trainer_state.json", "train_config.toml"] {
        assert!(out.join("last").join(f).is_file(), "last/{f} missing");
    }
    assert!(out.join("curves.svg").is_file() && out.join("metrics.jsonl").is_file());
    let sbert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("last/sentence_bert_config.json")).unwrap()).unwrap();
    assert_eq!(sbert["max_seq_length"], 256, "the inference length is kept, not the training one");
    // It loads like any model folder, and the trained model moved: 5 steps at the default lr
    // (1e-5) move this pair's embeddings by at least MOVED (measured: printed below); the
    // start model gives them exactly again (difference 0).
    const MOVED: f64 = 1e-4;
    let embed = |model: &Path| -> Vec<Vec<f32>> {
        let o = iftcl(&["embed", "--device", "cpu", "--model", model.to_str().unwrap()], Some(b"a dog runs\na dog is running\n"));
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (trained, start) = (embed(&out.join("last")), embed(&model_dir()));
    assert_eq!(trained.len(), 2);
    let moved = (0..2).map(|i| iftcl::compare::max_abs_diff(&trained[i], &start[i]).unwrap()).fold(0.0, f64::max);
    eprintln!("5 steps moved the embeddings by {moved:.2e} (max abs)");
    assert!(moved > MOVED, "the trained model's embeddings moved by only {moved:.2e}");
}

fn train_err(corpus_bytes: Option<&[u8]>, extra: &[&str]) -> (String, TempDir) {
    let t = TempDir::new(&format!("bad-{}", extra.join("").replace(['/', '-'], "")));
    let corpus = t.0.join("corpus.txt");
    match corpus_bytes {
        Some(b) => std::fs::write(&corpus, b).unwrap(),
        None => {
            small_corpus(&t.0);
        }
    }
    let out = t.0.join("out");
    let mut args = vec!["train", "--device", "cpu", "--corpus", corpus.to_str().unwrap(), "--out", out.to_str().unwrap(),
                        "--batch-size", "4", "--max-len", "12", "--max-steps", "6", "--eval-every", "2", "--no-eval", "--quiet"];
    args.extend_from_slice(extra);
    let o = Command::new(iftcl_bin()).args(&args).env("IFTCL_MODEL", model_dir()).output().unwrap();
    assert!(!o.status.success(), "expected a failure for {extra:?}");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    (err, t)
}

#[test]
fn bad_corpora_are_clear_errors() {
    let (e, _t) = train_err(Some(b""), &[]);
    assert!(e.contains("has no sentences"), "{e}");
    let (e, _t) = train_err(Some(b"\n\n   \n"), &[]);
    assert!(e.contains("has no sentences (3 lines, 3 blank)"), "{e}");
    let (e, _t) = train_err(Some(b"one\ntwo\nthree\n"), &[]);
    assert!(e.contains("3 sentences, fewer than one batch of 4"), "{e}");
    let (e, _t) = train_err(Some(b"one\ntwo\nbad \xff line\nfour\nfive\n"), &[]);
    assert!(e.contains("corpus.txt:3: not valid UTF-8"), "{e}");
}

#[test]
fn unwritable_output_folder() {
    let t = TempDir::new("unwritable");
    let file = t.0.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let corpus = small_corpus(&t.0);
    let out = file.join("out");
    let o = iftcl(&train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "2"), None);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("cannot create the output folder") && e.contains("a-file/out"), "{e}");
}

#[test]
fn resume_from_a_folder_that_is_not_a_checkpoint() {
    let o = iftcl(&["train", "--resume", model_dir().to_str().unwrap(), "--out", "/tmp/iftcl-never", "--device", "cpu"], None);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("checkpoint file trainer_state.json not found"), "{e}");
}

/// The default model with dropout off (config.json edited, the other files linked): training
/// is then deterministic up to float rounding on every device.
fn model_without_dropout(dir: &Path) -> std::path::PathBuf {
    let m = model_dir();
    let out = dir.join("model-no-dropout");
    std::fs::create_dir_all(out.join("1_Pooling")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(m.join("config.json")).unwrap()).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(out.join("config.json"), config.to_string()).unwrap();
    for f in ["model.safetensors", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
        std::os::unix::fs::symlink(m.join(f), out.join(f)).unwrap();
    }
    out
}

#[test]
fn wgpu_training_matches_the_cpu() {
    // Same model (dropout off), seed, batches and augmentations: 3 IFTCL steps on wgpu (the
    // fused loss kernels, GELU composed in tensor ops, every padded row) and on the CPU (plain
    // loss, host GELU, packed rows) differ only in float rounding.
    // - losses: within 1e-4 relative (measured ~1e-6, printed below);
    // - weights, through what they compute: the two trained models' embeddings are within 2%
    //   of how far training moved them from the start (measured: printed below). A device whose
    //   step did nothing, or something else, is 100% away.
    let t = TempDir::new("wgpu-vs-cpu");
    let corpus = small_corpus(&t.0);
    let model = model_without_dropout(&t.0);
    let run = |device: &str| {
        let out = t.0.join(format!("out-{device}"));
        let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "3");
        args[2] = device;
        args.extend(["--model", model.to_str().unwrap(), "--lr", "1e-4"]);
        let o = iftcl(&args, None);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        out
    };
    let (cpu, gpu) = (run("cpu"), run("gpu"));
    let (lc, lg) = (losses(&cpu), losses(&gpu));
    assert_eq!(lc.len(), 3);
    assert_eq!(lg.len(), 3);
    let mut worst: f64 = 0.0;
    for ((s, a), (_, b)) in lc.iter().zip(&lg) {
        let rel = iftcl::compare::rel_err_scalar(*b, *a).unwrap_or_else(|e| panic!("step {s}: {e}"));
        assert!(rel <= 1e-4, "step {s}: wgpu loss {b} vs CPU {a} (relative {rel:.2e})");
        worst = worst.max(rel);
    }
    let sentences = b"a man is playing a guitar .\nthe cat sleeps on the sofa .\nstock markets fell today .\n";
    let embed = |m: &Path| -> Vec<f32> {
        let o = iftcl(&["embed", "--device", "cpu", "--model", m.to_str().unwrap()], Some(sentences));
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().flat_map(|l| serde_json::from_str::<Vec<f32>>(l).unwrap()).collect()
    };
    let (start, on_cpu, on_gpu) = (embed(&model), embed(&cpu.join("last")), embed(&gpu.join("last")));
    let moved = iftcl::compare::max_abs_diff(&on_cpu, &start).unwrap();
    let apart = iftcl::compare::max_abs_diff(&on_gpu, &on_cpu).unwrap();
    eprintln!("wgpu vs CPU training, 3 steps: worst relative loss difference {worst:.2e}; embeddings moved {moved:.2e}, apart {apart:.2e} ({:.2}%)", 100.0 * apart / moved);
    assert!(moved > 1e-4, "training moved the embeddings by only {moved:.2e}");
    assert!(apart <= 0.02 * moved, "wgpu- and CPU-trained embeddings are {apart:.2e} apart, training moved them {moved:.2e}");
}

#[test]
fn fused_and_plain_loss_train_alike_on_wgpu() {
    // Same seed, same device, 20 steps with the queue in play (16 slots, max age 4): the fused
    // kernels and the plain burn-ops loss must give the same losses. Both sums are f32 in a
    // different order, so they agree to ~1e-6 per step (relative, or absolute below a loss of
    // 1: `rel_err_scalar`); Adam carries that into the weights, so the bound over 20 steps is
    // 1e-4 (the CPU resume test, which replays identical arithmetic, holds 1e-5).
    let t = TempDir::new("fused-train");
    let corpus = small_corpus(&t.0);
    let run = |fused: &str| {
        let out = t.0.join(format!("out-{fused}"));
        let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "20");
        args[2] = "gpu";
        args.extend(["--fused-loss", fused]);
        let o = iftcl(&args, None);
        assert!(o.status.success(), "--fused-loss {fused}: {}", stderr(&o));
        losses(&out)
    };
    let (fused, plain) = (run("on"), run("off"));
    assert_eq!(fused.len(), 20);
    assert_eq!(plain.len(), 20);
    let mut worst: f64 = 0.0;
    for ((s1, l1), (s2, l2)) in fused.iter().zip(&plain) {
        assert_eq!(s1, s2);
        let rel = iftcl::compare::rel_err_scalar(*l1, *l2).unwrap_or_else(|e| panic!("step {s1}: {e}"));
        worst = worst.max(rel);
        assert!(rel <= 1e-4, "step {s1}: fused loss {l1} vs plain {l2} (relative {rel:.2e})");
    }
    eprintln!("fused vs plain training, 20 steps on wgpu: worst relative loss difference {worst:.2e}");
}

#[test]
fn fused_loss_on_the_cpu_is_a_clear_error() {
    let t = TempDir::new("fused-cpu");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "2");
    args.extend(["--fused-loss", "on"]);
    let o = iftcl(&args, None);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("--fused-loss on needs a wgpu device"), "{e}");
}

#[test]
fn fine_tuner_steps_change_the_model() {
    // The in-memory stepping API (what `bench train` and the browser's fineTune use).
    use iftcl::train::{FineTuner, TrainConfig};
    let (start, _) = encoder(iftcl::DeviceSpec::Cpu);
    let settings = TrainConfig { batch_size: 4, max_len: 12, queue_size: Some(8), ..TrainConfig::default() };
    let mut tuner = FineTuner::new(&start, settings).unwrap();
    let texts: Vec<String> = ["the cat sat on the mat", "a dog ran far away", "birds fly south in winter", "rain falls on the town"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let before = start.embed(&["the cat sat on the mat"]).unwrap();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let out = tuner.step(&texts, 1e-4).unwrap();
        losses.push(out.total.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0]);
    }
    assert_eq!(tuner.steps_done(), 3);
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{losses:?}");
    let after = tuner.encoder().embed(&["the cat sat on the mat"]).unwrap();
    let moved: f32 = before[0].iter().zip(&after[0]).map(|(a, b)| (a - b).abs()).sum();
    assert!(moved > 1e-5, "the weights did not change ({moved})");
    let bytes = tuner.encoder().safetensors_bytes().unwrap();
    assert!(bytes.len() > 80_000_000, "safetensors of all-MiniLM-L6-v2 weigh ~90 MB, got {}", bytes.len());
    assert!(tuner.step(&texts[..1], 1e-4).unwrap_err().to_string().contains("at least 2 sentences"));
}
