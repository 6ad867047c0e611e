//! Parity with the PyTorch reference: token ids identical for the 24 golden sentences, and each
//! embedding within a relative L2 error (‖a − b‖ / ‖b‖) and a largest absolute difference of its
//! reference (`common::assert_parity`, which prints the worst of each): 1e-5 on the CPU backend,
//! 1e-4 on wgpu (lavapipe in CI). Measured: printed by the test. An error of 0.1 % in one layer
//! is far outside both; 1 − cosine, the measure before, is quadratic in the error and let it
//! pass.

use crate::common::*;
use iftcl::device::{self, DeviceSpec};

#[test]
fn token_ids_match_the_reference() {
    let g = golden();
    let (enc, _) = encoder(DeviceSpec::Cpu);
    let sentences = golden_sentences(g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let ids = enc.tokenize(&refs).unwrap();
    let expected = g["input_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 24);
    for (i, (got, want)) in ids.iter().zip(expected).enumerate() {
        let want: Vec<u32> = want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(got, &want, "sentence {i}: {:?}", sentences[i]);
    }
}

fn check_embeddings(spec: DeviceSpec, max_rel_l2: f64, max_abs: f64) {
    let g = golden();
    let (enc, description) = encoder(spec);
    let sentences = golden_sentences(g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let got = enc.embed(&refs).unwrap();
    let want = golden_embeddings(g);
    assert!(got.iter().all(|v| v.len() == 384));
    assert_parity(&format!("{description} vs PyTorch"), &got, &want, max_rel_l2, max_abs);
    // The reference's own pair similarities come out the same.
    let c01 = cosine(&got[0], &got[1]);
    assert!((c01 - g["cosine_0_1"].as_f64().unwrap()).abs() < 1e-3, "cosine_0_1 {c01}");
}

#[test]
fn cpu_embeddings_match_the_reference() {
    check_embeddings(DeviceSpec::Cpu, 1e-5, 1e-5);
}

#[test]
fn wgpu_embeddings_match_the_reference() {
    check_embeddings(DeviceSpec::Gpu(None), 1e-4, 1e-4);
}

#[test]
fn batching_and_order_do_not_change_vectors() {
    let g = golden();
    let sentences = golden_sentences(g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let batched = encoder(DeviceSpec::Cpu).0.with_batch_size(5).embed(&refs).unwrap();
    let single = encoder(DeviceSpec::Cpu).0.with_batch_size(1);
    let one_by_one: Vec<Vec<f32>> = refs.iter().map(|s| single.embed(&[s]).unwrap().remove(0)).collect();
    // Padding and batching change only float rounding (measured: printed).
    assert_parity("batches of 5 vs one sentence at a time", &batched, &one_by_one, 1e-5, 1e-5);
}

#[test]
fn length_grouped_encoding_gives_the_same_vectors_in_input_order() {
    let g = golden();
    let dev = device::cpu_device().device;
    let (enc, _) = encoder(DeviceSpec::Cpu);
    let sentences = golden_sentences(g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let ids = enc.tokenize(&refs).unwrap();
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let lengths: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.len()).collect();
    assert!(lengths.len() > 3, "the golden sentences should differ in length: {lengths:?}");
    let whole = iftcl::model::encode(&enc.model, &enc.head, &rows, &dev).into_data().try_to_vec::<f32>().unwrap();
    for buckets in [1, 2, 3, 4] {
        let grouped = iftcl::model::encode_grouped(&enc.model, &enc.head, &rows, &dev, buckets).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(grouped.len(), whole.len());
        iftcl::compare::assert_close(&format!("{buckets} groups"), &grouped, &whole, 1e-5);
    }
}
