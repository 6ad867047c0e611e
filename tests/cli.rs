//! The `iftcl` binary end to end: embed (streaming, JSONL, bad lines), similarity, eval, devices,
//! check-device.

use crate::common::*;

fn vectors(out: &str) -> Vec<Vec<f32>> {
    out.lines().map(|l| serde_json::from_str::<Vec<f32>>(l).unwrap()).collect()
}

#[test]
fn embed_keeps_order_and_matches_the_reference() {
    let g = golden();
    let sentences = golden_sentences(&g);
    let want = golden_embeddings(&g);
    // Plain lines cannot carry the golden sentence with tabs; take the first 9 (no tabs).
    let input: String = sentences[..9].iter().map(|s| format!("{s}\n")).collect();
    let o = iftcl(&["embed", "--device", "cpu"], Some(input.as_bytes()));
    assert!(o.status.success(), "{}", stderr(&o));
    let got = vectors(&stdout(&o));
    assert_eq!(got.len(), 9);
    for (i, v) in got.iter().enumerate() {
        assert!(cosine(v, &want[i]) >= 0.9999, "line {}", i + 1);
    }
}

#[test]
fn embed_jsonl_keeps_empty_strings_and_tabs() {
    let g = golden();
    let sentences = golden_sentences(&g);
    let want = golden_embeddings(&g);
    let input: String = sentences.iter().map(|s| format!("{}\n", serde_json::to_string(s).unwrap())).collect();
    let o = iftcl(&["embed", "--device", "cpu", "--jsonl"], Some(input.as_bytes()));
    assert!(o.status.success(), "{}", stderr(&o));
    let got = vectors(&stdout(&o));
    assert_eq!(got.len(), 24);
    for (i, v) in got.iter().enumerate() {
        assert!(cosine(v, &want[i]) >= 0.9999, "sentence {i} {:?}", sentences[i]);
    }
    assert!(sentences.iter().any(|s| s.is_empty()), "the golden set has an empty string");
}

#[test]
fn non_utf8_line_is_named_and_earlier_lines_are_kept() {
    let o = iftcl(&["embed", "--device", "cpu"], Some(b"first line\nsecond line\nbad \xff\xfe line\nfourth\n"));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("<stdin>:3: not valid UTF-8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(vectors(&stdout(&o)).len(), 2, "the two good lines before the bad one are written");
}

#[test]
fn long_lines_are_truncated_and_warned_once() {
    let long: String = (0..5000).map(|i| format!("word{i} ")).collect();
    let input = format!("{long}\nshort\n{long}\n");
    let o = iftcl(&["embed", "--device", "cpu"], Some(input.as_bytes()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(vectors(&stdout(&o)).len(), 3);
    let err = stderr(&o);
    assert_eq!(err.matches("truncated").count(), 1, "{err}");
}

#[test]
fn embed_reads_input_file_and_reports_missing_one() {
    let t = TempDir::new("embed-file");
    let input = t.0.join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let o = iftcl(&["embed", "--device", "cpu", "--input", input.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(vectors(&stdout(&o)).len(), 2);
    let o = iftcl(&["embed", "--device", "cpu", "--input", "/nonexistent/in.txt"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/in.txt"), "{}", stderr(&o));
}

#[test]
fn similarity_of_a_pair_and_a_matrix() {
    let g = golden();
    let o = iftcl(&["similarity", "--device", "cpu", "A man is playing a guitar.", "A man plays the guitar on stage."], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let c: f64 = stdout(&o).trim().parse().unwrap();
    assert!((c - g["cosine_0_1"].as_f64().unwrap()).abs() < 1e-4, "{c}");
    // The matrix: each entry off the diagonal is the pair's own `similarity` (printed to 6
    // digits), and the model ranks a cat nearer a kitten than the stock market, which a wrong or
    // untrained model does not.
    let s = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell sharply today."];
    let o = iftcl(&["similarity", "--device", "cpu", "--json", s[0], s[1], s[2]], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let m: Vec<Vec<f64>> = v["matrix"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect();
    assert_eq!(m.len(), 3);
    for i in 0..3 {
        assert!((m[i][i] - 1.0).abs() < 1e-5, "diagonal {i}: {}", m[i][i]);
        for j in (i + 1)..3 {
            let o = iftcl(&["similarity", "--device", "cpu", s[i], s[j]], None);
            assert!(o.status.success(), "{}", stderr(&o));
            let pair: f64 = stdout(&o).trim().parse().unwrap();
            assert!((m[i][j] - pair).abs() < 1e-5 && (m[j][i] - pair).abs() < 1e-5, "matrix [{i}][{j}] {} and [{j}][{i}] {} vs similarity {pair}", m[i][j], m[j][i]);
        }
    }
    eprintln!("cat~kitten {:.4}, cat~stocks {:.4}, kitten~stocks {:.4}", m[0][1], m[0][2], m[1][2]);
    assert!(m[0][1] > m[0][2] + 0.3 && m[0][1] > m[1][2] + 0.3, "cat~kitten {} should clearly beat cat~stocks {} and kitten~stocks {}", m[0][1], m[0][2], m[1][2]);
}

#[test]
fn eval_writes_json_figures() {
    let t = TempDir::new("eval-json");
    let json = t.0.join("figures.json");
    let sts = data_dir().join("sts");
    let o = iftcl(
        &["eval", "--device", "cpu", "--data", sts.to_str().unwrap(), "--tasks", "STS-B-dev", "--json", json.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("STS-B-dev"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let dev = v["STS-B-dev"].as_f64().unwrap();
    assert!((dev - 86.72).abs() <= 0.1, "{dev}");
}

#[test]
fn devices_lists_the_choice_of_auto() {
    let o = iftcl(&["devices"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("auto -> "), "{out}");
    assert!(out.contains("cpu"), "{out}");
}

#[test]
fn bad_device_is_a_clear_error() {
    let o = iftcl(&["similarity", "--device", "gpu:99", "a", "b"], None);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("gpu:99 does not exist"), "{err}");
    let o = iftcl(&["similarity", "--device", "tpu", "a", "b"], None);
    assert!(stderr(&o).contains("not one of auto, cpu, gpu, gpu:N"), "{}", stderr(&o));
}

#[test]
fn check_device_passes_on_the_wgpu_adapter_and_lists_every_case() {
    // lavapipe in CI: the wgpu kernels' gradients (matmul with transposed operands, softmax,
    // LayerNorm, GELU, gathers, pooling, the losses, a whole tiny encoder) against the CPU's.
    let t = TempDir::new("check-device");
    let json = t.0.join("checks.json");
    let o = iftcl(&["check-device", "--device", "gpu", "--json", json.to_str().unwrap()], None);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let rows = out.lines().filter(|l| l.starts_with("ok ")).count();
    // 32 op cases and the 37 parameter tensors of the 2-layer encoder (the README's count).
    assert_eq!(rows, 69, "op cases and the tiny encoder's parameters: {out}");
    assert!(out.contains("tiny encoder: encoder.layer.1.output.dense.weight"), "{out}");
    assert!(out.contains(&format!("all {rows} gradient checks passed")), "{out}");
    // The JSON holds the same cases, each passed; and the device under test is not the CPU: its
    // gradients differ from the CPU's by float rounding in most cases (measured: printed),
    // where a check that ran the CPU twice differs in none.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), rows);
    assert!(cases.iter().all(|c| c["passed"] == true && c["scale"].as_f64().unwrap() > 0.0), "{v}");
    let differ = cases.iter().filter(|c| c["max_abs_err"].as_f64().unwrap() > 0.0).count();
    let worst = cases.iter().map(|c| c["rel_err"].as_f64().unwrap()).fold(0.0, f64::max);
    eprintln!("check-device on {}: {differ} of {rows} cases differ from the CPU's gradients; largest relative error {worst:.2e}", v["device"]);
    assert!(2 * differ >= rows, "only {differ} of {rows} gradient cases differ from the CPU's at all: {v}");
}

#[test]
fn check_device_on_the_cpu_writes_every_case_as_json() {
    // The CPU against itself: every case exactly equal, each with a gradient to compare.
    let t = TempDir::new("check-device-cpu");
    let json = t.0.join("checks.json");
    let o = iftcl(&["check-device", "--device", "cpu", "--json", json.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 69, "{v}");
    assert_eq!(cases[0]["name"], stdout(&o).lines().nth(1).unwrap().split_whitespace().skip(2).collect::<Vec<_>>().join(" "), "the JSON lists the cases in the printed order");
    assert!(cases.iter().all(|c| c["passed"] == true && c["max_abs_err"] == 0.0 && c["rel_err"] == 0.0 && c["scale"].as_f64().unwrap() > 0.0), "{v}");
}
