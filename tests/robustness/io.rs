//! Files and streams around the commands: embed never over its input, no model with
//! non-finite weights used, STS files that pair up, a closed or full stdout, model folders,
//! messages.

use super::*;

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
