//! Encoder families beyond BERT + mean pooling, against PyTorch sentence-transformers: the tiny
//! seeded models of `../shared/golden/tiny/` (BERT with CLS pooling and Normalize, RoBERTa,
//! XLM-RoBERTa, MPNet; hidden 64, 2 layers, see its README), 16 sentences each.
//!
//! Token ids must be identical; embeddings within a relative L2 error (‖a − b‖ / ‖b‖) of 1e-5 and
//! a largest absolute difference of 1e-4 of the reference on the CPU, 1e-4 and 1e-3 on wgpu
//! (lavapipe in CI; `common::assert_parity` prints the worst of each), and their norms within
//! 1e-3 (relative) of the reference's, which is 1 where the folder has a Normalize module and the
//! raw pooled norm elsewhere. The bounds are tight because the mistakes are small on these
//! models: MPNet without its relative position bias still gives a cosine of 0.99983; RoBERTa's
//! positions counted from 0 give 0.979. Then each family trains a
//! few steps (the IFTCL loss, the queue), writes a checkpoint and loads again.

use crate::common::*;
use iftcl::SentenceEncoder;
use iftcl::device::{self, DeviceSpec};

const FAMILIES: [&str; 4] = ["bert-cls-normalize", "roberta", "xlm-roberta", "mpnet"];

/// `IFTCL_GOLDEN_TINY` (default `../shared/golden/tiny`).
fn reference(family: &str) -> serde_json::Value {
    let p = tiny_dir().join(format!("{family}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt()
}

/// Token ids, then embeddings (`assert_parity`) and norms on `spec`.
fn check(family: &str, spec: DeviceSpec, max_rel_l2: f64, max_abs: f64) {
    let g = reference(family);
    let selected = device::select(spec).unwrap();
    let enc = SentenceEncoder::load(&tiny_dir().join(family), &selected.device).unwrap_or_else(|e| panic!("{family}: {e}"));
    let sentences = golden_sentences(&g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let ids = enc.tokenize(&refs).unwrap();
    let want_ids = g["input_ids"].as_array().unwrap();
    assert_eq!(ids.len(), want_ids.len());
    for (i, (got, want)) in ids.iter().zip(want_ids).enumerate() {
        let want: Vec<u32> = want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(got, &want, "{family}: token ids of sentence {i} {:?}", sentences[i]);
    }
    let got = enc.embed(&refs).unwrap();
    let want = golden_embeddings(&g);
    assert_parity(&format!("{family} on {} vs PyTorch", selected.description), &got, &want, max_rel_l2, max_abs);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let (n, m) = (norm(a), norm(b));
        assert!((n - m).abs() <= 1e-3 * m, "{family} on {}: sentence {i}: norm {n} vs the reference's {m}", selected.description);
    }
}

#[test]
fn cpu_matches_pytorch_for_every_family() {
    for family in FAMILIES {
        check(family, DeviceSpec::Cpu, 1e-5, 1e-4);
    }
}

#[test]
fn wgpu_matches_pytorch_for_every_family() {
    for family in FAMILIES {
        check(family, DeviceSpec::Gpu(None), 1e-4, 1e-3);
    }
}

#[test]
fn a_folder_without_normalize_is_not_normalised_unless_asked() {
    // The RoBERTa fixture has no Normalize module: its vectors keep their norms (about 5.5),
    // as sentence-transformers' encode returns them; `--normalize` makes them unit vectors.
    let dir = tiny_dir().join("roberta");
    let raw = iftcl(&["embed", "--model", dir.to_str().unwrap(), "--device", "cpu"], Some(b"A cat sat on the mat.\n"));
    assert!(raw.status.success(), "{}", stderr(&raw));
    let unit = iftcl(&["embed", "--model", dir.to_str().unwrap(), "--device", "cpu", "--normalize"], Some(b"A cat sat on the mat.\n"));
    assert!(unit.status.success(), "{}", stderr(&unit));
    let parse = |o: &std::process::Output| -> Vec<f32> { serde_json::from_str(stdout(o).lines().next().unwrap()).unwrap() };
    let (a, b) = (parse(&raw), parse(&unit));
    assert!(norm(&a) > 2.0, "raw norm {}", norm(&a));
    assert!((norm(&b) - 1.0).abs() < 1e-5, "normalised norm {}", norm(&b));
    assert!(cosine(&a, &b) > 0.999_999);
}

#[test]
fn every_family_trains_and_its_checkpoint_loads_again() {
    for family in FAMILIES {
        let t = TempDir::new(&format!("family-{family}"));
        let corpus = small_corpus(&t.0);
        let (out, killed) = (t.0.join("out"), t.0.join("killed"));
        let model = tiny_dir().join(family);
        let steps = 8;
        let o = iftcl(&["train", "--config", train_toml_with_model(&t.0, &model, &corpus, &out, steps).to_str().unwrap(), "--no-eval", "--quiet"], None);
        assert!(o.status.success(), "{family}: {}", stderr(&o));
        let uninterrupted = losses(&out);
        assert_eq!(uninterrupted.len(), steps as usize, "{family}");
        // The checkpoint keeps the family's config and module files, and loads and embeds.
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("last/config.json")).unwrap()).unwrap();
        let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["model_type"], original["model_type"], "{family}");
        for file in iftcl::model::COMPANION_FILES {
            let (a, b) = (std::fs::read(model.join(file)).unwrap(), std::fs::read(out.join("last").join(file)).unwrap());
            assert!(a == b, "{family}: {file} not kept unchanged");
        }
        let dev = device::cpu_device().device;
        let trained = SentenceEncoder::load(&out.join("last"), &dev).unwrap_or_else(|e| panic!("{family}: {e}"));
        let start = SentenceEncoder::load(&model, &dev).unwrap();
        assert_eq!(trained.head, start.head, "{family}: pooling and normalisation kept");
        let s = ["The trained model still embeds.", "Another sentence."];
        let (x, y) = (trained.embed(&s).unwrap(), start.embed(&s).unwrap());
        let moved = iftcl::compare::max_abs_diff(&x[0], &y[0]).unwrap();
        assert!(moved > 1e-6, "{family}: training did not move the embeddings ({moved:e})");
        // The same run ended abruptly after step 7 (its checkpoint is step 5's) resumes from
        // that checkpoint and logs steps 6..8 with the uninterrupted run's losses: the CPU
        // backend repeats its arithmetic exactly.
        let o = killed_run(&train_toml_with_model(&t.0, &model, &corpus, &killed, steps), 7);
        assert_eq!(o.status.code(), None, "{family}: the run should have been cut off by abort(): {}", stderr(&o));
        let o = iftcl(&["train", "--resume", killed.join("last").to_str().unwrap(), "--out", killed.to_str().unwrap(), "--device", "cpu", "--quiet"], None);
        assert!(o.status.success(), "{family}: resume: {}", stderr(&o));
        assert_eq!(losses(&killed), uninterrupted, "{family}: losses of the resumed run vs the uninterrupted one");
    }
}

/// The five WGSL kernels of the fused loss (crates/iftcl/src/train/fused/kernels.rs), as
/// CubeCL's kernel log names them.
const FUSED_KERNELS: [&str; 5] = ["LogitsKernel", "RowsKernel", "ReduceKernel", "GradAnchorKernel", "GradTwinsKernel"];

#[test]
fn roberta_and_mpnet_train_with_the_fused_loss_on_wgpu_and_with_simcse() {
    for family in ["roberta", "mpnet"] {
        for (device, loss) in [("gpu", "twins"), ("cpu", "infonce")] {
            let t = TempDir::new(&format!("family-{family}-{device}-{loss}"));
            let corpus = small_corpus(&t.0);
            let out = t.0.join("out");
            let model = tiny_dir().join(family);
            let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "4");
            let at = args.iter().position(|a| *a == "--device").unwrap();
            args.drain(at..at + 2);
            args.extend(["--model", model.to_str().unwrap(), "--loss", loss, "--device", device]);
            // The run logs the kernels it launches (CubeCL's kernel log): on wgpu the fused
            // loss's five, forward and backward, ran.
            cubecl_kernel_log(&t.0);
            let o = iftcl_in(&t.0, &args);
            assert!(o.status.success(), "{family} on {device} with {loss}: {}", stderr(&o));
            if device == "gpu" {
                let log = kernel_log(&t.0);
                let missing: Vec<&str> = FUSED_KERNELS.iter().copied().filter(|k| !log.contains(k)).collect();
                assert!(missing.is_empty(), "{family} on wgpu: the fused kernels {missing:?} never ran ({} lines of kernel log)", log.lines().count());
            }
            SentenceEncoder::load(&out.join("best"), &device::cpu_device().device).unwrap_or_else(|e| panic!("{family}: {e}"));
        }
    }
}


#[test]
fn prompts_of_the_folder_are_applied_when_asked() {
    // The RoBERTa fixture with e5-style prompts and a default one.
    let t = TempDir::new("prompts");
    let dir = t.0.join("model");
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    let src = tiny_dir().join("roberta");
    for f in ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let st = r#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query", "similarity_fn_name": "cosine"}"#;
    std::fs::write(dir.join("config_sentence_transformers.json"), st).unwrap();
    let dev = device::cpu_device().device;
    let enc = SentenceEncoder::load(&dir, &dev).unwrap();
    assert_eq!(enc.prompt(), Some("query: "), "the default prompt is selected");
    let text = "A cat sat on the mat.";
    let plain = enc.clone().with_prompt_name(None).unwrap();
    let by_hand = plain.embed(&[&format!("passage: {text}")]).unwrap();
    let passage = enc.clone().with_prompt_name(Some("passage")).unwrap().embed(&[text]).unwrap();
    assert_eq!(by_hand, passage, "the prompt is the text put before the input");
    assert_ne!(enc.embed(&[text]).unwrap(), plain.embed(&[text]).unwrap());
    let err = enc.clone().with_prompt_name(Some("title")).unwrap_err().to_string();
    assert!(err.contains("title") && err.contains("passage") && err.contains("query"), "{err}");
    // The CLI's flag, and the prompts kept in a saved folder.
    let o = iftcl(&["embed", "--model", dir.to_str().unwrap(), "--device", "cpu", "--prompt-name", "nope"], Some(b"x\n"));
    assert!(!o.status.success() && stderr(&o).contains("nope"), "{}", stderr(&o));
    let saved = t.0.join("saved");
    enc.save(&saved).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(saved.join("config_sentence_transformers.json")).unwrap()).unwrap();
    assert_eq!(kept["prompts"]["passage"], "passage: ");
    assert_eq!(kept["default_prompt_name"], "query");
    // A default prompt that names no prompt is an error naming the field.
    std::fs::write(dir.join("config_sentence_transformers.json"), r#"{"prompts": {"query": "q: "}, "default_prompt_name": "doc"}"#).unwrap();
    let err = SentenceEncoder::load(&dir, &dev).unwrap_err().to_string();
    assert!(err.contains("default_prompt_name") && err.contains("config_sentence_transformers.json"), "{err}");
}
