//! Training output folders: one run per folder, no checkpoint from a diverged model, resumes
//! that agree with their checkpoint, no other run's best/, no staging folder left behind.

use super::*;

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
    let o = killed_run(&train_toml(&t.0, &corpus, &out, 10), 7);
    assert!(!o.status.success(), "the run should have been cut off");
    let lock = std::fs::read_to_string(out.join(".iftcl-train.lock")).expect("a killed run leaves its lock file");
    assert!(lock.starts_with("pid "), "{lock}");
    // What a checkpoint write cut off by a kill leaves behind, as the killed run records it.
    let pid = lock.lines().next().unwrap().trim_start_matches("pid ").to_string();
    let staging = format!(".best.{pid}.partial");
    std::fs::write(out.join(".iftcl-train.lock"), format!("{lock}writing {staging}\n")).unwrap();
    std::fs::create_dir_all(out.join(&staging)).unwrap();
    std::fs::write(out.join(&staging).join("model.safetensors"), vec![0u8; 1 << 20]).unwrap();
    let o = iftcl(&["train", "--resume", out.join("last").to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu", "--quiet"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("the run that held this folder (pid {pid}) ended without letting go")), "{e}");
    assert!(e.contains(&format!("{staging} (left by an interrupted write)")), "{e}");
    assert!(partials(&out).is_empty(), "{:?}", partials(&out));
    assert_eq!(checkpoint_step(&out.join("last")), 10);
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
