//! The second hostile probe's cases of silent results, hangs, oversized allocations and
//! misleading messages: each one works as documented, or stops with an error that names the
//! file, line, field or flag.

use std::time::{Duration, Instant};

use super::ownership::tiny_model;
use super::*;

/// An STS folder with every task of `eval` (three scored pairs each): `gold` is the score text
/// of the first STS12 pair.
fn all_tasks(t: &TempDir, gold: &str) -> PathBuf {
    let sts = t.0.join("sts");
    let pairs = ["A man plays a guitar.\tA man is playing a guitar.", "A cat sleeps.\tThe stock market fell.", "A dog runs.\tA dog is running in a park."];
    for year in 12..=16 {
        let dir = sts.join(format!("STS{year}-en-test"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("STS.input.x.txt"), pairs.join("\n") + "\n").unwrap();
        let first = if year == 12 { gold } else { "5.0" };
        std::fs::write(dir.join("STS.gs.x.txt"), format!("{first}\n0.5\n3.0\n")).unwrap();
    }
    std::fs::create_dir_all(sts.join("STSBenchmark")).unwrap();
    let csv: String = pairs.iter().zip(["5.0", "0.5", "3.0"]).map(|(p, s)| format!("g\tf\t2012\t1\t{s}\t{p}\n")).collect();
    for split in ["dev", "test"] {
        std::fs::write(sts.join(format!("STSBenchmark/sts-{split}.csv")), &csv).unwrap();
    }
    std::fs::create_dir_all(sts.join("SICK")).unwrap();
    let sick: String = pairs.iter().zip(["5.0", "1.0", "3.0"]).enumerate().map(|(i, (p, s))| format!("{i}\t{p}\t{s}\tNEUTRAL\n")).collect();
    std::fs::write(sts.join("SICK/SICK_test_annotated.txt"), format!("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n{sick}")).unwrap();
    sts
}

fn eval_tiny(sts: &Path, extra: &[&str]) -> Output {
    let (m, s) = (tiny_model(), sts.to_str().unwrap().to_string());
    let mut args = vec!["eval", "--device", "cpu", "--model", m.to_str().unwrap(), "--data", &s];
    args.extend_from_slice(extra);
    iftcl(&args, None)
}

#[test]
fn gold_scores_must_be_finite_and_tasks_count_once_in_a_labelled_average() {
    let t = TempDir::new("gold");
    for bad in ["nan", "inf", "-inf", "NaN"] {
        let sts = all_tasks(&t, bad);
        let o = eval_tiny(&sts, &["--tasks", "STS12"]);
        fails_with(&o, &["STS12-en-test/STS.gs.x.txt:1: score", "is not a finite number"]);
    }
    // A byte-order mark before the first score is not part of it.
    let sts = all_tasks(&t, "\u{feff}4.4");
    let o = eval_tiny(&sts, &["--tasks", "STS12"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A task named twice is refused; the average covers the seven tasks, named.
    fails_with(&eval_tiny(&sts, &["--tasks", "STS12,STS13,STS12"]), &["--tasks names STS12 more than once"]);
    let json = t.0.join("figures.json");
    let o = eval_tiny(&sts, &["--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let avg = stdout(&o).lines().find(|l| l.starts_with("avg")).unwrap_or_default().to_string();
    assert!(avg.contains("(of STS12, STS13, STS14, STS15, STS16, STS-B, SICK-R)"), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["avg_tasks"].as_array().unwrap().len(), 7, "{v}");
}

#[test]
fn no_command_writes_its_output_over_an_input() {
    let t = TempDir::new("json-input");
    let sts = all_tasks(&t, "5.0");
    let dev = sts.join("STSBenchmark/sts-dev.csv");
    let before = std::fs::read(&dev).unwrap();
    fails_with(&eval_tiny(&sts, &["--tasks", "STS-B-dev", "--json", dev.to_str().unwrap()]), &["--json", "is a file of the STS data"]);
    assert_eq!(std::fs::read(&dev).unwrap(), before, "the data file is intact");
    // The model's files, for eval --json and embed --output.
    let model = model_copy("json-model");
    let config = model.0.join("config.json");
    let before = std::fs::read(&config).unwrap();
    let m = model.0.to_str().unwrap();
    let o = iftcl(&["eval", "--device", "cpu", "--model", m, "--data", sts.to_str().unwrap(), "--tasks", "STS-B-dev", "--json", config.to_str().unwrap()], None);
    fails_with(&o, &["is a file of the model folder"]);
    let o = iftcl(&["embed", "--device", "cpu", "--model", m, "--output", config.to_str().unwrap()], Some(b"a\n"));
    fails_with(&o, &["--output", "is a file of the model folder"]);
    assert_eq!(std::fs::read(&config).unwrap(), before);
}

/// Waits for `child` at most `limit`, then kills it: a hang fails the test instead of hanging it.
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn fifos_and_links_are_outputs_as_documented() {
    let t = TempDir::new("fifo");
    let input = t.0.join("in.txt");
    std::fs::write(&input, "first line\nsecond line\n").unwrap();
    let fifo = t.0.join("vectors.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let mut child = spawn(&["embed", "--device", "cpu", "--model", tiny_model().to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", fifo.to_str().unwrap()]);
    let status = wait_at_most(&mut child, Duration::from_secs(60));
    if status.is_none() {
        // Unblock the reader before failing.
        let _ = std::fs::write(&fifo, "");
    }
    assert!(status.is_some_and(|s| s.success()), "embed --output FIFO must finish: {status:?}");
    assert_eq!(reader.join().unwrap().lines().count(), 2, "the reader got both vectors");

    // A link to a file that does not exist yet: the target is written, the link stays.
    let link = t.0.join("link.jsonl");
    std::os::unix::fs::symlink("target.jsonl", &link).unwrap();
    let o = iftcl(&["embed", "--device", "cpu", "--model", tiny_model().to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", link.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
    assert_eq!(std::fs::read_to_string(t.0.join("target.jsonl")).unwrap().lines().count(), 2);
}

#[test]
fn sigint_during_embed_leaves_no_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    let t = TempDir::new("sigint");
    let input = t.0.join("in.txt");
    let lines: String = (0..40_000).map(|i| format!("sentence number {i} of a long input\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let output = t.0.join("out.jsonl");
    let mut child = spawn(&["embed", "--device", "cpu", "--model", tiny_model().to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !partials(&t.0).iter().any(|p| p.to_string_lossy().contains("out.jsonl")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = wait_at_most(&mut child, Duration::from_secs(60)).expect("embed ends on SIGINT");
    assert_eq!(status.signal(), Some(2), "it ends as SIGINT ends a process: {status:?}");
    assert!(partials(&t.0).is_empty(), "{:?}", partials(&t.0));
    assert!(!output.exists(), "no output was committed");
}

#[test]
fn messages_name_the_real_problem() {
    let t = TempDir::new("messages");
    // A loop of links as the model folder.
    let (a, b) = (t.0.join("a"), t.0.join("b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let o = iftcl(&["similarity", "--device", "cpu", "--model", a.to_str().unwrap(), "x", "y"], None);
    let e = fails_with(&o, &["symbolic links"]);
    assert!(!e.contains("not found"), "{e}");
    // A folder named model.safetensors.
    let m = model_copy("weights-folder");
    std::fs::remove_file(m.0.join("model.safetensors")).unwrap();
    std::fs::create_dir_all(m.0.join("model.safetensors")).unwrap();
    let e = fails_with(&iftcl(&["similarity", "--device", "cpu", "--model", m.0.to_str().unwrap(), "x", "y"], None), &["model.safetensors", "this is a folder"]);
    assert!(!e.contains("not found"), "{e}");
    // A corpus that cannot be read twice (a pipe).
    let out = t.0.join("out");
    let o = bin(&train_args("/dev/stdin", out.to_str().unwrap(), "2")).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    let e = fails_with(&o, &["corpus /dev/stdin is not a regular file", "save the text to one first"]);
    assert!(!e.contains("Illegal seek"), "{e}");
    // Settings that cannot work.
    let corpus = small_corpus(&t.0);
    let c = corpus.to_str().unwrap();
    let mut args = train_args(c, out.to_str().unwrap(), "2");
    args.extend(["--weight-decay", "inf"]);
    fails_with(&iftcl(&args, None), &["weight-decay: inf must be a finite number"]);
    let o = iftcl(&["train", "--device", "cpu", "--corpus", c, "--out", out.to_str().unwrap(), "--epochs", "18446744073709551615", "--batch-size", "4", "--no-eval"], None);
    fails_with(&o, &["epochs: 18446744073709551615 passes of 100 steps are more steps than can be counted"]);
}

#[test]
fn sizes_are_checked_before_allocating() {
    let t = TempDir::new("sizes");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "2");
    let q = args.iter().position(|a| *a == "--queue-size").unwrap() + 1;
    args[q] = "1000000000";
    fails_with(&iftcl(&args, None), &["a queue of 1000000000 slots × 384 values (--queue-size) needs 1536.0 GB", "lower --queue-size"]);
    // An encoder too large for the machine, from random weights.
    let config = t.0.join("config.json");
    let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(model_dir().join("config.json")).unwrap()).unwrap();
    c["hidden_size"] = 65536.into();
    c["num_attention_heads"] = 64.into();
    std::fs::write(&config, c.to_string()).unwrap();
    let o = iftcl(&["bench", "train", "--device", "cpu", "--random-weights", config.to_str().unwrap(), "--corpus", corpus.to_str().unwrap(), "--steps", "1", "--warmup", "0"], None);
    fails_with(&o, &["config.json: field `hidden_size`", "hidden_size 65536", "more than this machine's"]);
}

/// A finished 2-step run of [`train_args`] with a checkpoint at step 2, then its `last/` resumed
/// with `--max-steps 3` and `extra` flags.
fn resume_tampered(t: &TempDir, tamper: impl Fn(&Path, &Path), extra: &[&str]) -> Output {
    let (corpus, out) = trained(t, "2");
    tamper(&out.join("last"), &corpus);
    let mut args: Vec<String> = vec!["train".into(), "--resume".into(), out.join("last").to_str().unwrap().into(), "--out".into(), out.to_str().unwrap().into()];
    args.extend(["--device", "cpu", "--quiet", "--max-steps", "3"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    iftcl(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)
}

/// Sets the last f32 of `file` (a safetensors file: its data ends the file) to `value`.
fn poke_last_f32(file: &Path, value: f32) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() - 4;
    bytes[at..].copy_from_slice(&value.to_le_bytes());
    std::fs::write(file, bytes).unwrap();
}

/// Sets the first value of the first f32 tensor of the optimizer state `file` to `value`.
fn poke_optimizer(file: &Path, value: f32) {
    let bytes = burn_pack::Bytes::from_bytes_vec(std::fs::read(file).unwrap());
    let mut tensors = burn_pack::Reader::from_bytes(bytes).unwrap().into_tensors().unwrap();
    let k = tensors.iter().position(|t| t.dtype == burn_pack::DType::F32).unwrap();
    let t = tensors.remove(k);
    let mut data = t.to_bytes().unwrap().to_vec();
    data[..4].copy_from_slice(&value.to_le_bytes());
    tensors.insert(k, burn_pack::Tensor::new(t.name, t.dtype, t.shape, t.param_id, burn_pack::Bytes::from_bytes_vec(data)));
    std::fs::write(file, &burn_pack::Writer::new(tensors).into_bytes().unwrap()[..]).unwrap();
}

#[test]
fn resume_checks_the_queue_the_optimizer_state_and_the_corpus() {
    let t = TempDir::new("resume-nan-queue");
    let o = resume_tampered(&t, |last, _| poke_last_f32(&last.join("queue.safetensors"), f32::NAN), &[]);
    fails_with(&o, &["queue.safetensors: holds NaN at position"]);
    let t = TempDir::new("resume-nan-optimizer");
    let o = resume_tampered(&t, |last, _| poke_optimizer(&last.join("optimizer.bpk"), f32::INFINITY), &[]);
    fails_with(&o, &["optimizer.bpk: state", "holds inf at position"]);
    let t = TempDir::new("resume-head");
    let o = resume_tampered(
        &t,
        |last, _| {
            let p = last.join("trainer_state.json");
            let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            v["queue_head"] = 999.into();
            std::fs::write(&p, v.to_string()).unwrap();
        },
        &[],
    );
    let e = fails_with(&o, &["queue_head 999 is outside the queue's 16 slots"]);
    assert!(!e.contains("width"), "{e}");
    // The corpus changed under the checkpoint: refused, unless allowed.
    let append = |_: &Path, corpus: &Path| {
        let mut text = std::fs::read_to_string(corpus).unwrap();
        text.push_str("one more sentence at the end\n");
        std::fs::write(corpus, text).unwrap();
    };
    let t = TempDir::new("resume-corpus");
    fails_with(&resume_tampered(&t, append, &[]), &["corpus.txt changed since this checkpoint was written", "--allow-corpus-change"]);
    let t = TempDir::new("resume-corpus-allowed");
    let o = resume_tampered(&t, append, &["--allow-corpus-change"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("not exactly"), "{}", stderr(&o));
}

#[test]
fn a_metrics_file_deleted_during_a_run_is_started_again() {
    let t = TempDir::new("metrics-deleted");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let child = spawn(&train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "8"));
    let metrics = out.join("metrics.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&metrics).is_ok_and(|m| m.contains("\"step\":1,")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::remove_file(&metrics).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("metrics.jsonl was removed during the run"), "{}", stderr(&o));
    let steps = step_lines(&out);
    assert_eq!(steps.last(), Some(&8), "{steps:?}");
}
