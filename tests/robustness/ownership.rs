//! The output folder holds a user's files too: a run removes, renames or restores only the
//! names it writes itself; `--overwrite` replaces another run's checkpoints only with its own
//! (every input checked first, nothing deleted first); a run never writes over what it reads;
//! a kill during the final writes leaves a state that `--resume` completes.

use std::time::{Duration, Instant};

use super::*;

/// The tiny BERT fixture (64 wide, 2 layers): runs of a few steps in well under a second.
pub fn tiny_model() -> PathBuf {
    let p = std::env::var("IFTCL_GOLDEN_TINY").map(PathBuf::from).unwrap_or_else(|_| root().join("../shared/golden/tiny"));
    let p = p.join("bert-cls-normalize");
    assert!(p.is_dir(), "the tiny golden models not found at {} (IFTCL_GOLDEN_TINY)", p.display());
    p
}

/// [`train_args`] on the tiny model.
fn tiny_train<'a>(corpus: &'a str, out: &'a str, steps: &'a str, model: &'a str) -> Vec<&'a str> {
    let mut args = train_args(corpus, out, steps);
    args.extend(["--model", model]);
    args
}

/// A finished 2-step run of [`tiny_train`] in `t`: the corpus, the output folder, the model.
fn tiny_trained(t: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let (corpus, out, model) = (small_corpus(&t.0), t.0.join("out"), tiny_model());
    let o = iftcl(&tiny_train(corpus.to_str().unwrap(), out.to_str().unwrap(), "2", model.to_str().unwrap()), None);
    assert!(o.status.success(), "{}", stderr(&o));
    (corpus, out, model)
}

/// The bytes of every file under `dir`, by relative path: what must survive unchanged.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn user_files_beside_and_inside_the_output_folder_survive_runs_and_overwrites() {
    let t = TempDir::new("user-files");
    let corpus = small_corpus(&t.0);
    let model = tiny_model();
    let out = t.0.join("d");
    // A user's files with the names leftover clean-up used to take for its own, inside the
    // output folder and beside it.
    for dir in [&out, &t.0] {
        for d in ["photos", "photos.old", "thesis.old", "best.partial", "last.old", "best.old"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
            std::fs::write(dir.join(d).join("keep.txt"), format!("{d} of the user")).unwrap();
        }
        std::fs::write(dir.join("film.mkv.partial"), "half a film").unwrap();
        std::fs::write(dir.join(".notes.txt.1234.partial"), "a user's hidden file").unwrap();
    }
    let before_inside = snapshot(&out);
    let before_beside: Vec<_> = snapshot(&t.0).into_iter().filter(|(p, _)| !p.starts_with("d/") && p != "corpus.txt").collect();
    // What a killed run recorded in its lock: only that is removed.
    std::fs::write(out.join(".iftcl-train.lock"), "pid 999999\nwriting .best.999999.partial\n").unwrap();
    std::fs::create_dir_all(out.join(".best.999999.partial")).unwrap();
    std::fs::write(out.join(".best.999999.partial/model.safetensors"), "half").unwrap();

    let (c, d, m) = (corpus.to_str().unwrap(), out.to_str().unwrap(), model.to_str().unwrap());
    let first = iftcl(&tiny_train(c, d, "2", m), None);
    assert!(first.status.success(), "{}", stderr(&first));
    let mut args = tiny_train(c, d, "3", m);
    args.push("--overwrite");
    let o = iftcl(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(checkpoint_step(&out.join("best")), 3);

    let ours = |p: &str| ["best/", "last/", "metrics.jsonl", "curves.svg"].iter().any(|n| p.starts_with(n));
    let after_inside: Vec<_> = snapshot(&out).into_iter().filter(|(p, _)| !ours(p)).collect();
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after_inside), names(&before_inside), "every file of the user in the output folder is there");
    assert!(after_inside == before_inside, "and as it was");
    let after_beside: Vec<_> = snapshot(&t.0).into_iter().filter(|(p, _)| !p.starts_with("d/") && p != "corpus.txt").collect();
    assert!(after_beside == before_beside, "every file beside it too");
    assert!(!out.join(".best.999999.partial").exists());
    let e = stderr(&first);
    assert!(e.contains(".best.999999.partial (left by an interrupted write)"), "{e}");
    assert_eq!(e.matches("removed").count() + e.matches("restored").count(), 1, "only the recorded leftover is touched: {e}");

    // A `best` that is not a checkpoint: refused, even with --overwrite, and left as it was.
    let other = t.0.join("other");
    std::fs::create_dir_all(other.join("best")).unwrap();
    std::fs::write(other.join("best/holiday.jpg"), "a photo").unwrap();
    let mut args = tiny_train(c, other.to_str().unwrap(), "2", m);
    args.push("--overwrite");
    fails_with(&iftcl(&args, None), &["other/best is not a checkpoint of `iftcl train`", "left as it is"]);
    assert_eq!(std::fs::read(other.join("best/holiday.jpg")).unwrap(), b"a photo");
    // A lock file's name taken by a user's file: refused, untouched.
    let locked = t.0.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(locked.join(".iftcl-train.lock"), "my own notes").unwrap();
    fails_with(&iftcl(&tiny_train(c, locked.to_str().unwrap(), "2", m), None), &["is not the lock file of an `iftcl train` run"]);
    assert_eq!(std::fs::read(locked.join(".iftcl-train.lock")).unwrap(), b"my own notes");
}

#[test]
fn overwrite_checks_every_input_before_the_old_checkpoints_are_touched() {
    let t = TempDir::new("overwrite-inputs");
    let (corpus, out, model) = tiny_trained(&t);
    let (c, d, m) = (corpus.to_str().unwrap(), out.to_str().unwrap(), model.to_str().unwrap());
    let before: Vec<_> = snapshot(&out).into_iter().filter(|(p, _)| p.starts_with("best/") || p.starts_with("last/")).collect();
    assert!(before.len() > 10, "{}", before.len());

    let one_line = t.0.join("one-line.txt");
    std::fs::write(&one_line, "a single sentence\n").unwrap();
    let broken = t.0.join("broken-model");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::create_dir_all(broken.join("1_Pooling")).unwrap();
    for f in ["config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
        std::fs::copy(model.join(f), broken.join(f)).unwrap();
    }
    std::fs::write(broken.join("model.safetensors"), &std::fs::read(model.join("model.safetensors")).unwrap()[..1000]).unwrap();
    let empty_sts = t.0.join("sts");
    std::fs::create_dir_all(empty_sts.join("STSBenchmark")).unwrap();
    std::fs::write(empty_sts.join("STSBenchmark/sts-dev.csv"), "").unwrap();
    let missing = t.0.join("no-such-corpus.txt");
    let (one, brk, sts, miss) = (one_line.to_str().unwrap(), broken.to_str().unwrap(), empty_sts.to_str().unwrap(), missing.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (tiny_train(miss, d, "3", m), "no-such-corpus.txt"),
        (tiny_train(one, d, "3", m), "fewer than one batch"),
        (tiny_train(c, d, "3", brk), "model.safetensors"),
        (tiny_train(c, d, "3", m).into_iter().filter(|a| *a != "--no-eval").chain(["--eval-data", sts]).collect(), "sts-dev.csv has 0 scored pair(s)"),
        (tiny_train(c, d, "3", m).into_iter().map(|a| if a == "16" { "1000000000000" } else { a }).collect(), "--queue-size"),
    ];
    for (mut args, says) in cases {
        args.push("--overwrite");
        fails_with(&iftcl(&args, None), &[says]);
        let now: Vec<_> = snapshot(&out).into_iter().filter(|(p, _)| p.starts_with("best/") || p.starts_with("last/")).collect();
        assert!(now == before, "{says}: the previous run's checkpoints must be intact");
    }
}

#[test]
fn a_run_never_writes_over_what_it_reads() {
    let t = TempDir::new("inputs-inside");
    let (corpus, out, model) = tiny_trained(&t);
    let (c, d, m) = (corpus.to_str().unwrap(), out.to_str().unwrap(), model.to_str().unwrap());
    let before = snapshot(&out);
    let best = out.join("best");
    let metrics = out.join("metrics.jsonl");
    let (b, mj) = (best.to_str().unwrap(), metrics.to_str().unwrap());
    // The start model is the output folder's best/, which the run would replace.
    let mut args = tiny_train(c, d, "3", b);
    args.push("--overwrite");
    fails_with(&iftcl(&args, None), &["--model", "best, which this run writes into its output folder"]);
    // The corpus is the metrics file the run rewrites.
    let mut args = tiny_train(mj, d, "3", m);
    args.push("--overwrite");
    fails_with(&iftcl(&args, None), &["--corpus", "metrics.jsonl, which this run writes"]);
    // Resuming from best/ with --overwrite.
    let o = iftcl(&["train", "--resume", b, "--out", d, "--device", "cpu", "--overwrite", "--quiet"], None);
    fails_with(&o, &["--resume", "best, which this run writes into its output folder"]);
    assert_eq!(snapshot(&out), before, "nothing in the output folder changed");
}

/// Entries of `dir` whose name contains `part` and ends in `.partial`.
fn staging(dir: &Path, part: &str) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.contains(part) && n.ends_with(".partial")
    })
}

#[test]
fn a_kill_during_the_final_writes_leaves_a_state_that_resume_completes() {
    // Killed (SIGKILL) while best/ of the last step is being written (`--no-eval`, a
    // checkpoint at step 2 and the last at step 4): `--resume` must end with best/ and last/
    // at step 4, never "nothing to do" with best/ missing or behind. The default model's
    // 90 MB checkpoints take long enough to write for the kill to land inside.
    let t = TempDir::new("final-write");
    let corpus = small_corpus(&t.0);
    let mut landed = 0;
    for attempt in 0..4 {
        let out = t.0.join(format!("out{attempt}"));
        let (c, d) = (corpus.to_str().unwrap(), out.to_str().unwrap());
        let mut args = train_args(c, d, "4");
        let every = args.iter().position(|a| *a == "--eval-every").unwrap() + 1;
        args[every] = "2";
        let mut child = bin(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        // Wait for the checkpoint of step 2, then for the staging folder of the final best/.
        while !out.join("last/trainer_state.json").is_file() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        while !staging(&out, "best") && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        let o = iftcl(&["train", "--resume", out.join("last").to_str().unwrap(), "--out", d, "--device", "cpu", "--quiet"], None);
        let best_done = out.join("best/trainer_state.json").is_file() && checkpoint_step(&out.join("best")) == 4;
        if stderr(&o).contains("nothing to do") && best_done {
            continue; // the kill came after the last write: nothing was cut off; try again
        }
        assert!(o.status.success(), "attempt {attempt}: best/ complete: {best_done}; {}", stderr(&o));
        assert_eq!((checkpoint_step(&out.join("best")), checkpoint_step(&out.join("last"))), (4, 4));
        assert!(partials(&out).is_empty(), "{:?}", partials(&out));
        landed += 1;
        break;
    }
    assert_eq!(landed, 1, "no kill landed inside the final writes in 4 attempts");
}
