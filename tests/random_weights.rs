//! `iftcl bench train --random-weights CONFIG.json`: an encoder of any config's shape from
//! random weights (BERT-base-sized on a GPU; a tiny one here, on the CPU), with the tokenizer
//! of --model, and clear errors for configs that cannot work.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A 2-layer, width-32 BERT config (the default model's vocabulary) with `edit` applied.
fn tiny_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut json = serde_json::json!({
        "model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64,
        "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1
    });
    edit(&mut json);
    let p = dir.join("config.json");
    std::fs::write(&p, json.to_string()).unwrap();
    p
}

fn bench_train(config: &Path, json: Option<&Path>) -> std::process::Output {
    let corpus = data_dir().join("corpus/senteval-sentences.txt");
    let mut args = vec!["bench", "train", "--device", "cpu", "--random-weights", config.to_str().unwrap(), "--corpus", corpus.to_str().unwrap()];
    args.extend(["--batch-size", "8", "--warmup", "1", "--steps", "2", "--loss", "twins,infonce"]);
    if let Some(j) = json {
        args.extend(["--json", j.to_str().unwrap()]);
    }
    iftcl(&args, None)
}

#[test]
fn trains_an_encoder_of_the_config_shape_from_random_weights() {
    let t = TempDir::new("random-weights");
    let config = tiny_config(&t.0, |_| {});
    let json = t.0.join("bench.json");
    let o = bench_train(&config, Some(&json));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    // Embeddings 30522·32 + 64·32 + 2·32 + LayerNorm 64; per layer four 32×32 dense layers,
    // 32→64→32 feed-forward and two LayerNorms.
    let per_layer = 4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 64;
    let expected = 30522 * 32 + 64 * 32 + 2 * 32 + 64 + 2 * per_layer;
    for (row, loss) in rows.iter().zip(["twins", "infonce"]) {
        assert_eq!(row["loss"], loss);
        assert_eq!(row["parameters"].as_u64().unwrap(), expected as u64, "{row}");
        assert!(row["weights"].as_str().unwrap().starts_with("random weights"), "{row}");
        // The figure is the one the timed steps give: batch size over their median (of two,
        // their mean), each step a finite positive time. Its size is the benchmark's business
        // (printed), not this test's.
        let times: Vec<f64> = row["step_times_s"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
        assert_eq!(times.len(), 2, "{row}");
        assert!(times.iter().all(|t| t.is_finite() && *t > 0.0), "{row}");
        let median = (times[0] + times[1]) / 2.0;
        assert!((row["median_step_s"].as_f64().unwrap() - median).abs() <= 1e-12 * median, "{row}");
        let per_s = row["sentences_per_s"].as_f64().unwrap();
        assert!((per_s - 8.0 / median).abs() <= 1e-9 * per_s, "sentences/s {per_s} vs batch 8 over the median step {median} s: {row}");
        assert!(row["reference_cpu_sentences_per_s"].is_null(), "no all-MiniLM-L6-v2 reference for random weights: {row}");
    }
}

#[test]
fn configs_that_cannot_work_are_clear_errors() {
    let t = TempDir::new("random-weights-bad");
    let small_vocab = tiny_config(&t.0, |j| j["vocab_size"] = 1000.into());
    let o = bench_train(&small_vocab, None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("the tokenizer belongs to another model"), "{}", stderr(&o));

    let bad_heads = tiny_config(&t.0, |j| j["num_attention_heads"] = 5.into());
    let o = bench_train(&bad_heads, None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("num_attention_heads"), "{}", stderr(&o));

    let missing = t.0.join("no-such-config.json");
    let o = bench_train(&missing, None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-config.json"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}
