//! `iftcl train` end to end on a small corpus: exact resume after a kill, checkpoint layout,
//! and bad input (each a clear error, nothing lost).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A small corpus cut from the shared one (first 400 sentences).
fn small_corpus(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(data_dir().join("corpus/senteval-sentences.txt")).unwrap();
    let p = dir.join("corpus.txt");
    std::fs::write(&p, text.lines().take(400).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    p
}

fn train_args<'a>(corpus: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--device", "cpu", "--corpus", corpus, "--out", out, "--batch-size", "4", "--max-len", "12",
        "--max-steps", steps, "--eval-every", "5", "--no-eval", "--quiet", "--seed", "7", "--queue-size", "16",
    ]
}

/// (step, loss) of every step line of a metrics file.
fn losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "step")
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
fn a_killed_run_resumes_exactly() {
    let t = TempDir::new("resume");
    let corpus = small_corpus(&t.0);
    let (c, full, killed) = (corpus.to_str().unwrap(), t.0.join("full"), t.0.join("killed"));
    let steps = "32";

    let o = iftcl(&train_args(c, full.to_str().unwrap(), steps), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = losses(&full);
    assert_eq!(reference.len(), 32);
    assert!(reference.iter().all(|(_, l)| l.is_finite()));

    // The same run, killed (SIGKILL) once it has passed step 7.
    let mut child = Command::new(iftcl_bin())
        .args(train_args(c, killed.to_str().unwrap(), steps))
        .env("IFTCL_MODEL", model_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while losses(&killed).len() < 7 {
        assert!(start.elapsed() < Duration::from_secs(300), "the run never reached step 7");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("last/trainer_state.json")).unwrap()).unwrap();
    let k = state["step"].as_u64().unwrap();
    assert!(k >= 5 && k % 5 == 0, "last checkpoint at step {k}");

    let o = iftcl(&["train", "--resume", killed.join("last").to_str().unwrap(), "--out", killed.to_str().unwrap(), "--device", "cpu", "--quiet"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = losses(&killed);
    assert_eq!(resumed.len(), 32, "the resumed metrics keep steps 1..{k} and add the rest once");
    let mut compared = 0;
    for ((s1, l1), (s2, l2)) in reference.iter().zip(&resumed) {
        assert_eq!(s1, s2);
        if *s1 > k && *s1 <= k + 20 {
            assert!((l1 - l2).abs() <= 1e-5, "step {s1}: uninterrupted {l1} vs resumed {l2}");
            compared += 1;
        }
    }
    assert_eq!(compared, 20);

    // Both runs end with the same weights.
    let dev = iftcl::device::cpu_device().device;
    let a = iftcl::SentenceEncoder::load(&full.join("last"), &dev).unwrap();
    let b = iftcl::SentenceEncoder::load(&killed.join("last"), &dev).unwrap();
    let s = ["a man is playing a guitar .", "the cat sleeps ."];
    let (ea, eb) = (a.embed(&s).unwrap(), b.embed(&s).unwrap());
    for (x, y) in ea.iter().zip(&eb) {
        assert!(cosine(x, y) > 0.999999, "final weights differ");
    }
}

#[test]
fn checkpoints_keep_the_sentence_transformers_layout() {
    let t = TempDir::new("layout");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let o = iftcl(&train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "5"), None);
    assert!(o.status.success(), "{}", stderr(&o));
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
    // It loads like any model folder, and the trained model moved.
    let o = iftcl(&["similarity", "--device", "cpu", "--model", out.join("last").to_str().unwrap(), "a dog runs", "a dog is running"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let c: f64 = stdout(&o).trim().parse().unwrap();
    assert!(c > 0.5 && c < 1.0, "{c}");
}

fn train_err(corpus_bytes: Option<&[u8]>, extra: &[&str], env: Option<(&str, &str)>) -> (String, TempDir) {
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
    let mut cmd = Command::new(iftcl_bin());
    cmd.args(&args).env("IFTCL_MODEL", model_dir());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(!o.status.success(), "expected a failure for {extra:?}");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    (err, t)
}

#[test]
fn bad_corpora_are_clear_errors() {
    let (e, _t) = train_err(Some(b""), &[], None);
    assert!(e.contains("has no sentences"), "{e}");
    let (e, _t) = train_err(Some(b"\n\n   \n"), &[], None);
    assert!(e.contains("has no sentences (3 lines, 3 blank)"), "{e}");
    let (e, _t) = train_err(Some(b"one\ntwo\nthree\n"), &[], None);
    assert!(e.contains("3 sentences, fewer than one batch of 4"), "{e}");
    let (e, _t) = train_err(Some(b"one\ntwo\nbad \xff line\nfour\nfive\n"), &[], None);
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
fn nan_loss_stops_with_the_last_good_checkpoint_intact() {
    let (e, t) = train_err(None, &[], Some(("IFTCL_FAULT_NAN_AT_STEP", "5")));
    assert!(e.contains("the loss became NaN at step 5") && e.contains("last good checkpoint"), "{e}");
    let last = t.0.join("out/last");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(last.join("trainer_state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 4, "the checkpoint of step 4 is the last one written");
    iftcl::SentenceEncoder::load(&last, &iftcl::device::cpu_device().device).expect("the last checkpoint loads");
}

#[test]
fn resume_from_a_folder_that_is_not_a_checkpoint() {
    let o = iftcl(&["train", "--resume", model_dir().to_str().unwrap(), "--out", "/tmp/iftcl-never", "--device", "cpu"], None);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("checkpoint file trainer_state.json not found"), "{e}");
}

#[test]
fn training_runs_on_wgpu_with_the_same_code() {
    let t = TempDir::new("wgpu-train");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let o = iftcl(
        &["train", "--device", "gpu", "--corpus", corpus.to_str().unwrap(), "--out", out.to_str().unwrap(),
          "--batch-size", "4", "--max-len", "12", "--max-steps", "2", "--eval-every", "2", "--no-eval", "--quiet"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let l = losses(&out);
    assert_eq!(l.len(), 2);
    assert!(l.iter().all(|(_, x)| x.is_finite() && *x >= 0.0), "{l:?}");
    iftcl::SentenceEncoder::load(&out.join("last"), &iftcl::device::cpu_device().device).expect("the wgpu-trained model loads");
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
        let rel = iftcl::bench::rel_err_scalar(*l1, *l2);
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
    let start = iftcl::SentenceEncoder::load(&model_dir(), &iftcl::device::cpu_device().device).unwrap();
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
