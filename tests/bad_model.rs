//! Broken model folders give messages a user can act on, never a panic.

use crate::common::*;
use iftcl::SentenceEncoder;

fn load_err(dir: &std::path::Path) -> String {
    let e = SentenceEncoder::load(dir, &iftcl::device::cpu_device().device).unwrap_err().to_string();
    eprintln!("{e}");
    e
}

#[test]
fn missing_folder() {
    let e = load_err(std::path::Path::new("/nonexistent/model"));
    assert!(e.contains("model folder not found: /nonexistent/model") && e.contains("fetch-model"), "{e}");
    // Through the CLI too: an error line, exit code 1, no backtrace.
    let o = iftcl(&["similarity", "--device", "cpu", "--model", "/nonexistent/model", "a", "b"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error: model folder not found"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn missing_files() {
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        let t = model_copy(&format!("missing-{f}"));
        std::fs::remove_file(t.0.join(f)).unwrap();
        let e = load_err(&t.0);
        assert!(e.contains(&format!("{f} not found")), "{e}");
    }
}

#[test]
fn truncated_weights() {
    let t = model_copy("truncated");
    let p = t.0.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&t.0);
    assert!(e.contains("model.safetensors is truncated or corrupt"), "{e}");
    std::fs::write(&p, b"garbage").unwrap();
    assert!(load_err(&t.0).contains("truncated or corrupt"));
}

fn edit_config(dir: &std::path::Path, key: &str, value: serde_json::Value) {
    let p = dir.join("config.json");
    let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    c[key] = value;
    std::fs::write(&p, c.to_string()).unwrap();
}

#[test]
fn shapes_that_disagree_with_config() {
    let t = model_copy("shape");
    edit_config(&t.0, "intermediate_size", serde_json::json!(1024));
    let e = load_err(&t.0);
    assert!(e.contains("encoder.layer.0.intermediate.dense.weight") && e.contains("[1536, 384]") && e.contains("[1024, 384]"), "{e}");
}

#[test]
fn tokenizer_larger_than_embedding_table() {
    let t = model_copy("vocab");
    edit_config(&t.0, "vocab_size", serde_json::json!(20000));
    let e = load_err(&t.0);
    assert!(e.contains("tokenizer/model mismatch") && e.contains("20000"), "{e}");
}

#[test]
fn malformed_config() {
    let t = model_copy("badjson");
    std::fs::write(t.0.join("config.json"), "{\"hidden_size\": 384,").unwrap();
    let e = load_err(&t.0);
    assert!(e.contains("config.json is not a valid JSON file") && e.contains("line 1"), "{e}");
}

#[test]
fn save_round_trips_with_identical_embeddings() {
    let dev = iftcl::device::cpu_device().device;
    let (enc, _) = encoder(iftcl::DeviceSpec::Cpu);
    let t = TempDir::new("save");
    let out = t.0.join("saved");
    enc.save(&out).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
              "sentence_bert_config.json", "config_sentence_transformers.json"] {
        assert!(out.join(f).is_file(), "{f} missing from the saved folder");
    }
    let back = SentenceEncoder::load(&out, &dev).unwrap();
    let s = ["A man is playing a guitar.", "", "The cat sleeps on the warm windowsill."];
    let (a, b) = (enc.embed(&s).unwrap(), back.embed(&s).unwrap());
    assert_eq!(a, b, "embeddings changed after a save/load round trip");
}
