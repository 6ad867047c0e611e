//! sentence-transformers modules after pooling (Dense, LayerNorm, Normalize) applied as
//! sentence-transformers applies them: PyTorch parity on the tiny BERT with two Dense modules
//! and a LayerNorm (tests/fixtures/st-modules, written by its make.py), the same vectors from
//! the older layout's names, a save that keeps the modules, and any other module refused.

use iftcl::{DeviceSpec, SentenceEncoder, device};

use super::ownership::tiny_model;
use super::*;

/// The tiny BERT with the fixture's modules.json and module folders, in a folder of `t`.
fn model_with_modules(t: &TempDir) -> PathBuf {
    let (base, fixture) = (tiny_model(), root().join("tests/fixtures/st-modules"));
    let dir = t.0.join("model");
    for sub in ["1_Pooling", "2_Dense", "3_LayerNorm", "4_Dense", "5_Normalize"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
        std::fs::copy(base.join(f), dir.join(f)).unwrap();
    }
    for f in ["modules.json", "2_Dense/config.json", "2_Dense/model.safetensors", "3_LayerNorm/config.json", "3_LayerNorm/model.safetensors", "4_Dense/config.json", "4_Dense/model.safetensors", "5_Normalize/config.json"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    dir
}

fn expected() -> (Vec<String>, Vec<Vec<f32>>) {
    let g: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/st-modules/expected.json")).unwrap()).unwrap();
    (golden_sentences(&g), golden_embeddings(&g))
}

/// The largest difference between the model's vectors and PyTorch's.
fn worst_difference(dir: &Path) -> f64 {
    let (sentences, want) = expected();
    let enc = SentenceEncoder::load(dir, &device::select(DeviceSpec::Cpu).unwrap().device).unwrap_or_else(|e| panic!("{e}"));
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let got = enc.embed(&refs).unwrap();
    assert_eq!(enc.dim(), 16, "the last Dense module's width");
    let mut worst = 0.0f64;
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.len(), b.len(), "sentence {i}: width");
        let d = iftcl::compare::max_abs_diff(a, b).unwrap_or_else(|e| panic!("sentence {i}: {e}"));
        worst = worst.max(d);
    }
    worst
}

#[test]
fn dense_layer_norm_and_normalize_match_pytorch() {
    let t = TempDir::new("st-modules");
    let dir = model_with_modules(&t);
    let worst = worst_difference(&dir);
    eprintln!("st-modules: largest difference to PyTorch sentence-transformers {worst:.1e}");
    assert!(worst <= 2e-5, "{worst}");
    // The older layout's names (sentence_transformers.models.Dense, no module_input_name).
    let modules = std::fs::read_to_string(dir.join("modules.json")).unwrap();
    let renamed = modules
        .replace("sentence_transformers.base.modules.transformer.", "sentence_transformers.models.")
        .replace("sentence_transformers.sentence_transformer.modules.pooling.", "sentence_transformers.models.")
        .replace("sentence_transformers.base.modules.dense.", "sentence_transformers.models.")
        .replace("sentence_transformers.sentence_transformer.modules.layer_norm.", "sentence_transformers.models.")
        .replace("sentence_transformers.base.modules.normalize.", "sentence_transformers.models.");
    assert_ne!(renamed, modules);
    std::fs::write(dir.join("modules.json"), renamed).unwrap();
    for d in ["2_Dense", "4_Dense"] {
        let p = dir.join(d).join("config.json");
        let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        c.as_object_mut().unwrap().retain(|k, _| !k.starts_with("module_"));
        std::fs::write(&p, c.to_string()).unwrap();
    }
    assert_eq!(worst_difference(&dir), worst, "the same vectors");
    // The command line gives 16 values per line.
    let o = iftcl(&["embed", "--device", "cpu", "--model", dir.to_str().unwrap()], Some(b"A man is playing a guitar.\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Vec<f32> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v.len(), 16);
}

#[test]
fn a_saved_model_keeps_its_modules_and_training_it_is_refused() {
    let t = TempDir::new("st-modules-save");
    let dir = model_with_modules(&t);
    let cpu = device::select(DeviceSpec::Cpu).unwrap().device;
    let enc = SentenceEncoder::load(&dir, &cpu).unwrap();
    let saved = t.0.join("saved");
    enc.save(&saved).unwrap();
    let modules: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(saved.join("modules.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = modules.as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap().rsplit('.').next().unwrap()).collect();
    assert_eq!(kinds, ["Transformer", "Pooling", "Dense", "LayerNorm", "Dense", "Normalize"]);
    assert!(worst_difference(&saved) <= 2e-5);

    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "2");
    args.extend(["--model", dir.to_str().unwrap()]);
    fails_with(&iftcl(&args, None), &["lists a Dense module after pooling (folder `2_Dense`)", "training such a model is not supported"]);
    assert!(!out.join("last").exists());
}

#[test]
fn modules_this_tool_does_not_run_are_refused_by_name() {
    let t = TempDir::new("st-modules-other");
    let dir = model_with_modules(&t);
    let p = dir.join("modules.json");
    let mut modules: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    modules.as_array_mut().unwrap().insert(2, serde_json::json!({"idx": 2, "name": "lstm", "path": "2_LSTM", "type": "sentence_transformers.models.LSTM"}));
    std::fs::write(&p, modules.to_string()).unwrap();
    let o = iftcl(&["similarity", "--device", "cpu", "--model", dir.to_str().unwrap(), "a", "b"], None);
    fails_with(&o, &["modules.json", "`sentence_transformers.models.LSTM`", "is not one this tool runs"]);
    // An activation outside torch.nn's that are supported.
    let t = TempDir::new("st-modules-act");
    let dir = model_with_modules(&t);
    let c = dir.join("2_Dense/config.json");
    std::fs::write(&c, std::fs::read_to_string(&c).unwrap().replace("torch.nn.modules.activation.Tanh", "torch.nn.modules.activation.Softsign")).unwrap();
    let o = iftcl(&["similarity", "--device", "cpu", "--model", dir.to_str().unwrap(), "a", "b"], None);
    fails_with(&o, &["2_Dense/config.json: field `activation_function`", "Softsign"]);
}
