//! Nothing silently lost or corrupted: an output folder owned by one run, no embed over its own
//! input, no checkpoint from a diverged model, no model with non-finite weights used, STS files
//! that must pair up, no panic on a closed or full stdout, resumes that must agree with their
//! checkpoint, no other run's best/ passed off as this one's, no staging folders left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;

fn bin(args: &[&str]) -> Command {
    let mut cmd = Command::new(iftcl_bin());
    cmd.args(args).env("IFTCL_MODEL", model_dir()).env("RUST_LOG", "warn");
    cmd
}

fn spawn(args: &[&str]) -> Child {
    bin(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn fails_with(o: &Output, what: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected an error exit: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for w in what {
        assert!(e.contains(w), "`{w}` missing from: {e}");
    }
    e
}

/// The names of the entries of `dir` ending in `.partial`, at any depth below it.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".partial") {
            found.push(p.clone());
        }
        if p.is_dir() {
            found.extend(partials(&p));
        }
    }
    found
}

fn step_lines(out: &Path) -> Vec<u64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "step")
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

fn checkpoint_step(dir: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("trainer_state.json")).unwrap()).unwrap();
    v["step"].as_u64().unwrap()
}

// --- 1. one run per output folder -------------------------------------------------------------

#[test]
fn two_runs_started_together_on_one_folder_one_is_refused() {
    let t = TempDir::new("race");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "6");
    let (a, b) = (spawn(&args), spawn(&args));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (won, lost) = match (a.status.success(), b.status.success()) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => panic!("exactly one run must own the folder:\n{}\n{}", stderr(&a), stderr(&b)),
    };
    fails_with(&lost, &["is in use by another `iftcl train` run", out.to_str().unwrap()]);
    assert!(stdout(&won).contains("steps: 6"), "{}", stdout(&won));
    assert_eq!(step_lines(&out), (1..=6).collect::<Vec<_>>(), "metrics.jsonl holds the winner's steps, once");
    assert_eq!(checkpoint_step(&out.join("last")), 6);
    assert!(!out.join(".iftcl-train.lock").exists(), "the lock is released at the end");
}

#[test]
fn a_killed_run_leaves_a_lock_and_leftovers_the_next_run_takes_over() {
    let t = TempDir::new("stale");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let o = bin(&train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "10"))
        .env("IFTCL_FAULT_ABORT_AFTER_STEP", "7")
        .output()
        .unwrap();
    assert!(!o.status.success(), "the run should have been cut off");
    let lock = std::fs::read_to_string(out.join(".iftcl-train.lock")).expect("a killed run leaves its lock file");
    assert!(lock.starts_with("pid "), "{lock}");
    // What a write cut off by a kill leaves behind.
    std::fs::create_dir_all(out.join("best.partial")).unwrap();
    std::fs::write(out.join("best.partial/model.safetensors"), vec![0u8; 1 << 20]).unwrap();
    let o = iftcl(&["train", "--resume", out.join("last").to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu", "--quiet"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("the run that held this folder ({lock}) ended without letting go")), "{e}");
    assert!(e.contains("best.partial (left by an interrupted write)"), "{e}");
    assert!(partials(&out).is_empty(), "{:?}", partials(&out));
    assert_eq!(checkpoint_step(&out.join("last")), 10);
}

// --- 2. embed never writes over its input ------------------------------------------------------

#[test]
fn embed_refuses_its_input_as_output_and_writes_atomically() {
    let t = TempDir::new("embed-same");
    let input = t.0.join("in.txt");
    let text = "first line\nsecond line\n";
    std::fs::write(&input, text).unwrap();
    let link = t.0.join("link.txt");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let i = input.to_str().unwrap();
    for output in [i, link.to_str().unwrap()] {
        let o = iftcl(&["embed", "--device", "cpu", "--input", i, "--output", output], None);
        fails_with(&o, &["is the input", "choose another output file"]);
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text, "the input is intact");
    }
    // The same file as stdin.
    let o = bin(&["embed", "--device", "cpu", "--output", i]).stdin(std::fs::File::open(&input).unwrap()).output().unwrap();
    fails_with(&o, &["is the input (stdin)"]);
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);

    // A run that fails leaves an existing output as it was, and no temporary file.
    let output = t.0.join("out.jsonl");
    std::fs::write(&output, "older\n").unwrap();
    std::fs::write(&input, b"good\nbad \xff line\n").unwrap();
    let o = iftcl(&["embed", "--device", "cpu", "--input", i, "--output", output.to_str().unwrap()], None);
    fails_with(&o, &["in.txt:2: not valid UTF-8", "nothing was written to it"]);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "older\n");
    assert!(partials(&t.0).is_empty(), "{:?}", partials(&t.0));
    std::fs::write(&input, text).unwrap();
    let o = iftcl(&["embed", "--device", "cpu", "--input", i, "--output", output.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 2);
    assert!(partials(&t.0).is_empty(), "{:?}", partials(&t.0));
}

// --- 3. no poisoned checkpoint, no poisoned model used ----------------------------------------

#[test]
fn a_diverged_model_is_never_checkpointed() {
    let t = TempDir::new("poison");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "3");
    let every = args.iter().position(|a| *a == "--eval-every").unwrap() + 1;
    args[every] = "1";
    args.extend(["--lr", "1e30"]);
    let o = iftcl(&args, None);
    fails_with(&o, &["at step 1", "training stopped: no checkpoint was written, so there is none to resume from"]);
    assert!(!out.join("last").exists() && !out.join("best").exists(), "nothing was written from the diverged model");
    assert!(partials(&out).is_empty());
}

/// Sets the values of tensor `name` in the model copy `dir`'s model.safetensors.
fn poke_weights(dir: &Path, name: &str, values: &[f32]) {
    let p = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    for (i, v) in values.iter().enumerate() {
        bytes[start + 4 * i..start + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&p, bytes).unwrap();
}

#[test]
fn models_with_non_finite_or_overflowing_weights_are_refused() {
    let nan = model_copy("nan-weights");
    poke_weights(&nan.0, "embeddings.LayerNorm.bias", &[0.0, f32::NAN]);
    let m = nan.0.to_str().unwrap();
    let sts = data_dir().join("sts");
    let named = ["embeddings.LayerNorm.bias", "holds NaN at position 1", "the weights are not finite"];
    fails_with(&iftcl(&["similarity", "--device", "cpu", "--model", m, "a", "b"], None), &named);
    fails_with(&iftcl(&["embed", "--device", "cpu", "--model", m], Some(b"a\n")), &named);
    fails_with(&iftcl(&["eval", "--device", "cpu", "--model", m, "--data", sts.to_str().unwrap(), "--tasks", "STS-B-dev"], None), &named);

    // Finite, but so large that every forward pass overflows: refused at the first embedding.
    let big = model_copy("huge-weights");
    poke_weights(&big.0, "embeddings.LayerNorm.weight", &[3e38; 8]);
    let m = big.0.to_str().unwrap();
    let o = iftcl(&["embed", "--device", "cpu", "--model", m], Some(b"a dog runs\n"));
    fails_with(&o, &["<stdin>:1: the model gives a non-finite embedding"]);
    assert!(stdout(&o).is_empty(), "no null vector is written: {}", stdout(&o));
    fails_with(&iftcl(&["similarity", "--device", "cpu", "--model", m, "a", "b"], None), &["non-finite embedding"]);
}

// --- 4. STS files must pair up ------------------------------------------------------------------

/// An STS folder with an STS12 subset of `inputs` / `golds` lines and an STS-B dev file.
fn sts_folder(t: &TempDir, inputs: &str, golds: &str, dev: &str) -> PathBuf {
    let sts = t.0.join("sts");
    std::fs::create_dir_all(sts.join("STS12-en-test")).unwrap();
    std::fs::create_dir_all(sts.join("STSBenchmark")).unwrap();
    std::fs::write(sts.join("STS12-en-test/STS.input.x.txt"), inputs).unwrap();
    std::fs::write(sts.join("STS12-en-test/STS.gs.x.txt"), golds).unwrap();
    std::fs::write(sts.join("STSBenchmark/sts-dev.csv"), dev).unwrap();
    sts
}

const DEV: &str = "g\tf\t2012\t1\t5.0\tA man plays a guitar.\tA man is playing a guitar.\n\
                   g\tf\t2012\t2\t0.5\tA cat sleeps.\tThe stock market fell.\n\
                   g\tf\t2012\t3\t3.0\tA dog runs.\tA dog is running in a park.\n";

#[test]
fn eval_refuses_unpaired_and_empty_files() {
    let t = TempDir::new("sts-bad");
    let pairs = "a man sings\ta man is singing\na cat\ta stock\nkids play\tchildren play\n";
    let sts = sts_folder(&t, &pairs[..pairs.find("kids").unwrap()], "4.5\n0.2\n4.0\n", "");
    let s = sts.to_str().unwrap();
    let o = iftcl(&["eval", "--device", "cpu", "--data", s, "--tasks", "STS12"], None);
    fails_with(&o, &["STS.input.x.txt has 2 lines but its gold file", "STS.gs.x.txt has 3"]);
    std::fs::write(sts.join("STS12-en-test/STS.input.x.txt"), "").unwrap();
    std::fs::write(sts.join("STS12-en-test/STS.gs.x.txt"), "").unwrap();
    fails_with(&iftcl(&["eval", "--device", "cpu", "--data", s, "--tasks", "STS12"], None), &["STS12", "0 scored pair(s)"]);
    let o = iftcl(&["eval", "--device", "cpu", "--data", s, "--tasks", "STS-B-dev"], None);
    fails_with(&o, &["STS-B-dev", "sts-dev.csv has 0 scored pair(s)"]);
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    std::fs::write(sts.join("STS12-en-test/STS.input.x.txt"), pairs).unwrap();
    std::fs::write(sts.join("STS12-en-test/STS.gs.x.txt"), "4.5\n0.2\n4.0\n").unwrap();
    let o = iftcl(&["eval", "--device", "cpu", "--data", s, "--tasks", "STS12"], None);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_bad_eval_json_path_fails_before_the_work() {
    let t = TempDir::new("eval-json-path");
    let sts = sts_folder(&t, "", "", DEV);
    let json = t.0.join("no-such-folder/figures.json");
    // A model that does not exist: the JSON path must be the first thing refused.
    let o = iftcl(&["eval", "--model", "/nonexistent/model", "--data", sts.to_str().unwrap(), "--tasks", "STS-B-dev", "--json", json.to_str().unwrap()], None);
    fails_with(&o, &["cannot create", "no-such-folder/figures.json"]);
}

// --- 5. a closed or full stdout ----------------------------------------------------------------

/// Runs `args` with its stdout a pipe whose reading end is closed before the command writes.
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = bin(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn with_full_stdout(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    bin(args).stdin(Stdio::null()).stdout(full).output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly_and_a_full_one_is_an_error() {
    let t = TempDir::new("pipes");
    let sts = sts_folder(&t, "", "", DEV);
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let eval = ["eval", "--device", "cpu", "--data", sts.to_str().unwrap(), "--tasks", "STS-B-dev"];
    let input = t.0.join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let embed = ["embed", "--device", "cpu", "--input", input.to_str().unwrap()];
    let commands: Vec<Vec<&str>> = vec![
        vec!["similarity", "--device", "cpu", "a", "b", "c"],
        vec!["devices"],
        eval.to_vec(),
        embed.to_vec(),
        train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "2"),
    ];
    for args in &commands {
        let o = with_closed_stdout(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {e}");
        assert!(!e.contains("panicked") && !e.contains("error"), "{args:?}: {e}");
    }
    for args in &commands[..4] {
        let o = with_full_stdout(args);
        fails_with(&o, &["cannot write to stdout: No space left on device"]);
    }
}

// --- 6. modules.json naming a folder that is not there ----------------------------------------

#[test]
fn a_missing_pooling_folder_named_by_modules_json_is_an_error() {
    let t = model_copy("no-pooling");
    std::fs::remove_dir_all(t.0.join("1_Pooling")).unwrap();
    let o = iftcl(&["similarity", "--device", "cpu", "--model", t.0.to_str().unwrap(), "a", "b"], None);
    fails_with(&o, &["modules.json names the Pooling module's folder `1_Pooling`", "1_Pooling/config.json"]);
}

// --- 7. a resume agrees with its checkpoint ----------------------------------------------------

#[test]
fn resume_refuses_other_settings_honours_max_steps_and_checks_the_optimizer() {
    let t = TempDir::new("resume-flags");
    let (_, out) = trained(&t, "5");
    let last = out.join("last");
    let (l, d) = (last.to_str().unwrap(), out.to_str().unwrap());
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", l, "--out", d, "--device", "cpu", "--quiet"];
        args.extend_from_slice(extra);
        iftcl(&args, None)
    };
    let o = resume(&["--lr", "1e-3", "--batch-size", "8", "--loss", "infonce", "--max-steps", "7"]);
    fails_with(&o, &["a resumed run keeps its settings", "lr = 0.001, the checkpoint's", "batch-size = 8, the checkpoint's 4", "loss = \"infonce\""]);
    fails_with(&resume(&["--model", "/elsewhere/model"]), &["model = \"/elsewhere/model\""]);
    fails_with(&resume(&[]), &["already at step 5 of 5", "a larger --max-steps continues it"]);
    assert_eq!(step_lines(&out).len(), 5, "a refused resume writes nothing");

    let o = resume(&["--max-steps", "7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("the schedule now spans 7 steps instead of 5"), "{}", stderr(&o));
    assert_eq!(step_lines(&out), (1..=7).collect::<Vec<_>>());
    assert_eq!(checkpoint_step(&last), 7);

    // Optimizer state that does not fit the model: a truncated file, and one whose first
    // tensor has another shape.
    let opt = last.join("optimizer.bpk");
    let good = std::fs::read(&opt).unwrap();
    std::fs::write(&opt, &good[..good.len() / 3]).unwrap();
    fails_with(&resume(&["--max-steps", "9"]), &["optimizer.bpk: cannot be read"]);
    let mut tensors = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(good)).unwrap().into_tensors().unwrap();
    let first = tensors.remove(0);
    tensors.insert(0, burn_pack::Tensor::new(first.name, first.dtype, vec![1usize, 1], first.param_id, burn_pack::Bytes::from_bytes_vec(vec![0; 4])));
    std::fs::write(&opt, &burn_pack::Writer::new(tensors).into_bytes().unwrap()[..]).unwrap();
    fails_with(&resume(&["--max-steps", "9"]), &["optimizer.bpk: state", "has shape [1, 1]", "the optimizer state of a model of another shape"]);
}

// --- 8. another run's best/ ----------------------------------------------------------------------

#[test]
fn a_new_run_into_another_runs_folder_is_refused_unless_overwrite() {
    let t = TempDir::new("overwrite");
    let (corpus, out) = trained(&t, "2");
    let (c, d) = (corpus.to_str().unwrap(), out.to_str().unwrap());
    let o = iftcl(&train_args(c, d, "3"), None);
    fails_with(&o, &["already holds best/ and last/ of another run", "--overwrite"]);
    assert_eq!(checkpoint_step(&out.join("best")), 2, "the earlier run's best/ is untouched");
    let mut args = train_args(c, d, "3");
    args.push("--overwrite");
    let o = iftcl(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("(the last model: no evaluation)"), "{}", stdout(&o));
    assert_eq!(checkpoint_step(&out.join("best")), 3, "best/ is this run's");
    assert_eq!(checkpoint_step(&out.join("last")), 3);
}

// --- 9. a full disk ----------------------------------------------------------------------------

#[test]
fn a_write_that_fails_for_lack_of_space_leaves_no_staging_folder() {
    // A file-size limit of 10 MB (with SIGXFSZ ignored, a write past it fails with EFBIG, as
    // one on a full disk fails with ENOSPC): the checkpoint's 90 MB of weights cannot be written.
    let t = TempDir::new("full");
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "5").join(" ");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f 20000; exec \"$0\" {args}"))
        .arg(iftcl_bin())
        .env("IFTCL_MODEL", model_dir())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    fails_with(&o, &["File too large", "model.safetensors"]);
    assert!(partials(&out).is_empty(), "{:?}", partials(&out));
    assert!(!out.join("last").exists());
    assert!(!out.join(".iftcl-train.lock").exists(), "the lock is released on failure");
}

// --- 10. smaller messages --------------------------------------------------------------------------

#[test]
fn messages_name_the_real_problem_once() {
    // A file given as the model folder.
    let file = model_dir().join("config.json");
    let o = iftcl(&["similarity", "--device", "cpu", "--model", file.to_str().unwrap(), "a", "b"], None);
    fails_with(&o, &["is a file, not a folder"]);
    // A tokenizer.json that is JSON but not a tokenizer, and one that is not JSON.
    let t = model_copy("tokenizer-json");
    let m = t.0.to_str().unwrap();
    std::fs::write(t.0.join("tokenizer.json"), "{\"a\": 1}").unwrap();
    fails_with(&iftcl(&["similarity", "--device", "cpu", "--model", m, "a", "b"], None), &["is valid JSON but not a Hugging Face tokenizers file"]);
    std::fs::write(t.0.join("tokenizer.json"), "{\"a\": ").unwrap();
    fails_with(&iftcl(&["similarity", "--device", "cpu", "--model", m, "a", "b"], None), &["tokenizer.json is not a valid JSON file"]);
    // The OS error of a failed file operation, once.
    let t = TempDir::new("os-error");
    let blocker = t.0.join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let corpus = small_corpus(&t.0);
    let out = blocker.join("out");
    let e = fails_with(&iftcl(&train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "2"), None), &["cannot create the output folder"]);
    assert_eq!(e.matches("os error").count(), 1, "{e}");
    // The drivers are probed at most once per process, and not at all for the CPU: each probe
    // loads every Vulkan driver, and Mesa's device-select layer prints "XDG_RUNTIME_DIR is
    // invalid or not set" twice per probe when that variable is unset.
    let o = bin(&["similarity", "--device", "cpu", "a", "b"]).env_remove("XDG_RUNTIME_DIR").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("XDG_RUNTIME_DIR"), "{}", stderr(&o));
    let o = bin(&["devices"]).env_remove("XDG_RUNTIME_DIR").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).matches("XDG_RUNTIME_DIR").count() <= 2, "one probe at most: {}", stderr(&o));
}
