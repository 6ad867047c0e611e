//! Weight files in f16, bf16 and int8 (`iftcl convert`, `SentenceEncoder::save_as`): written
//! as a whole folder, loaded back, and embedding within the bounds of docs/models.md
//! ("Precisions") of the f32 model: cosine >= 0.9999 for f16, 0.999 for bf16, 0.99 for int8.
//! The tiny fixtures of every family (`IFTCL_GOLDEN_TINY`) keep it cheap; all-MiniLM-L6-v2 goes
//! through the CLI once, in f16, the browser's default download.

use std::path::Path;

use crate::common::*;
use iftcl::convert::convert;
use iftcl::{Compute, ModelFiles, Precision, PreparedEncoder, SentenceEncoder};
use iftcl::burn::tensor::Device;

const FAMILIES: [&str; 4] = ["bert-cls-normalize", "roberta", "xlm-roberta", "mpnet"];

/// The worst cosine to f32 each precision must reach.
fn bound(p: Precision) -> f64 {
    match p {
        Precision::F32 => 1.0 - 1e-12,
        Precision::F16 => 0.9999,
        Precision::Bf16 => 0.999,
        Precision::Int8 => 0.99,
    }
}

fn worst_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| cosine(x, y)).fold(f64::INFINITY, f64::min)
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The header of a safetensors file: (the JSON header, the offset its data starts at).
fn header(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), 8 + n)
}

#[test]
fn every_family_converts_to_every_precision_and_embeds_close_to_f32() {
    let t = TempDir::new("precision-families");
    let cpu = Device::flex();
    let sentences = golden_sentences(&golden());
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    for family in FAMILIES {
        let src = tiny_dir().join(family);
        let f32_model = SentenceEncoder::load(&src, &cpu).unwrap();
        let reference = f32_model.embed(&refs).unwrap();
        let f32_bytes = std::fs::metadata(src.join("model.safetensors")).unwrap().len() as f64;
        for p in [Precision::F16, Precision::Bf16, Precision::Int8] {
            let out = t.0.join(format!("{family}-{p}"));
            let done = convert(&src, &out, p, false).unwrap_or_else(|e| panic!("{family} {p}: {e}"));
            // The same folder, file for file: every other file copied unchanged.
            for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
                assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{family} {p}: {f}");
            }
            assert_eq!(done.copied.len(), 6, "{family} {p}: {:?}", done.copied);
            let config = json_file(&out.join("config.json"));
            assert_eq!(config["dtype"], p.torch_dtype(), "{family} {p}: config.json's dtype (transformers 5 writes `dtype`)");
            assert_eq!(config["hidden_size"], json_file(&src.join("config.json"))["hidden_size"]);
            // The bytes: f16 and bf16 half of f32 (less the pooler these fixtures carry).
            let ratio = done.bytes_after as f64 / f32_bytes;
            let (lo, hi) = if p == Precision::Int8 { (0.25, 0.45) } else { (0.45, 0.51) };
            assert!((lo..=hi).contains(&ratio), "{family} {p}: {} of {f32_bytes} bytes", done.bytes_after);

            // An int8 file computes in int8 on the CPU; every other precision in f32.
            let loaded = SentenceEncoder::load(&out, &cpu).unwrap_or_else(|e| panic!("{family} {p}: {e}"));
            assert_eq!(loaded.compute(), if p == Precision::Int8 { Compute::Int8 } else { Compute::F32 }, "{family} {p}");
            let worst = worst_cosine(&loaded.embed(&refs).unwrap(), &reference);
            eprintln!("{family} {p}: worst cosine to f32 {worst:.7} over {} sentences, {:.0} % of the bytes ({} compute)", refs.len(), 100.0 * ratio, loaded.compute());
            assert!(worst >= bound(p), "{family} {p}: worst cosine {worst} < {}", bound(p));
            // The same weights computed in f32 (dequantised), within the same bound.
            let as_f32 = loaded.clone().with_compute(Compute::F32).unwrap();
            assert_eq!(as_f32.compute(), Compute::F32);
            let f32_vectors = as_f32.embed(&refs).unwrap();
            let worst_f32 = worst_cosine(&f32_vectors, &reference);
            assert!(worst_f32 >= bound(p), "{family} {p} in f32: worst cosine {worst_f32} < {}", bound(p));
            if p == Precision::Int8 {
                assert_ne!(f32_vectors, loaded.embed(&refs).unwrap(), "{family}: int8 compute changed nothing");
                // `--dtype int8` on the f32 folder: its dense layers quantized on load (its word
                // embeddings stay f32, unlike the int8 file's), within the same bound.
                let quantized = f32_model.clone().with_compute(Compute::Int8).unwrap();
                assert_eq!(quantized.compute(), Compute::Int8);
                let worst_q = worst_cosine(&quantized.embed(&refs).unwrap(), &reference);
                assert!(worst_q >= bound(p) && worst_q < 1.0 - 1e-9, "{family}: int8 compute of the f32 folder: worst cosine {worst_q}");
            }

            // Back to f32: the values the converted file holds, exactly.
            let back = t.0.join(format!("{family}-{p}-f32"));
            convert(&out, &back, Precision::F32, false).unwrap();
            let again = SentenceEncoder::load(&back, &cpu).unwrap().embed(&refs).unwrap();
            assert_eq!(again, f32_vectors, "{family} {p} -> f32 changed the values");
        }
    }
}

#[test]
fn save_as_writes_the_same_weights_as_convert_and_f32_stays_the_default() {
    let t = TempDir::new("precision-save-as");
    let src = tiny_dir().join("mpnet");
    let enc = SentenceEncoder::load(&src, &Device::flex()).unwrap();
    for p in Precision::ALL {
        let saved = t.0.join(format!("saved-{p}"));
        enc.save_as(&saved, p).unwrap();
        let converted = t.0.join(format!("converted-{p}"));
        convert(&src, &converted, p, false).unwrap();
        let bytes = std::fs::read(saved.join("model.safetensors")).unwrap();
        assert_eq!(bytes, std::fs::read(converted.join("model.safetensors")).unwrap(), "{p}");
        let (h, _) = header(&bytes);
        let quantization = h["__metadata__"].get("iftcl.quantization").and_then(|v| v.as_str());
        assert_eq!(quantization, (p == Precision::Int8).then_some("int8-rows-v1"), "{p}");
        let dtypes: std::collections::BTreeSet<&str> = h.iter().filter(|(k, _)| *k != "__metadata__").map(|(_, v)| v["dtype"].as_str().unwrap()).collect();
        let want: &[&str] = match p {
            Precision::F32 => &["F32"],
            Precision::F16 => &["F16"],
            Precision::Bf16 => &["BF16"],
            Precision::Int8 => &["F32", "I8"],
        };
        assert_eq!(dtypes.into_iter().collect::<Vec<_>>(), want, "{p}");
    }
    // save() is save_as(F32), byte for byte.
    enc.save(&t.0.join("plain")).unwrap();
    assert_eq!(std::fs::read(t.0.join("plain/model.safetensors")).unwrap(), std::fs::read(t.0.join("saved-f32/model.safetensors")).unwrap());
    // The int8 file: every dense layer's weight and the word embeddings quantized, nothing else.
    let (h, _) = header(&std::fs::read(t.0.join("saved-int8/model.safetensors")).unwrap());
    let int8: Vec<&String> = h.keys().filter(|k| k.ends_with(".int8")).collect();
    assert_eq!(int8.len(), 2 * 6 + 1, "{int8:?}");
    assert!(h.contains_key("embeddings.word_embeddings.weight.int8") && h.contains_key("embeddings.word_embeddings.weight.scale"));
    assert!(h.contains_key("embeddings.position_embeddings.weight") && h.contains_key("encoder.relative_attention_bias.weight"));
    assert!(h.contains_key("encoder.layer.1.attention.attn.q.bias") && !h.contains_key("encoder.layer.1.attention.attn.q.weight"));
}

/// `dir`'s model.safetensors with its header's `__metadata__` replaced by `meta`.
fn rewrite_metadata(dir: &Path, meta: serde_json::Value) {
    let p = dir.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    let (mut h, start) = header(&bytes);
    h.insert("__metadata__".into(), meta);
    let mut text = serde_json::to_vec(&h).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[start..]);
    std::fs::write(&p, out).unwrap();
}

#[test]
fn int8_files_without_their_layout_key_or_with_bad_scales_are_refused_by_name() {
    let t = TempDir::new("precision-int8-refused");
    let src = tiny_dir().join("bert-cls-normalize");
    let good = t.0.join("good");
    convert(&src, &good, Precision::Int8, false).unwrap();
    let refused = |dir: &Path, says: &[&str]| {
        let e = SentenceEncoder::load(dir, &Device::flex()).err().expect("refused").to_string();
        assert!(e.contains(&dir.join("model.safetensors").display().to_string()) && says.iter().all(|s| e.contains(s)), "{e}\nshould say {says:?}");
    };
    let no_key = t.0.join("no-key");
    convert(&good, &no_key, Precision::Int8, false).unwrap();
    rewrite_metadata(&no_key, serde_json::json!({"format": "pt"}));
    refused(&no_key, &[".weight.int8`", "`iftcl.quantization` has no such key", "int8-rows-v1"]);
    rewrite_metadata(&no_key, serde_json::json!({"format": "pt", "iftcl.quantization": "int8-cols-v2"}));
    refused(&no_key, &["says \"int8-cols-v2\""]);

    // A damaged scale: the first scale of a layer made NaN, 0 and -1 in place.
    let damaged = t.0.join("damaged");
    convert(&good, &damaged, Precision::Int8, false).unwrap();
    let p = damaged.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    let (h, start) = header(&bytes);
    let name = "encoder.layer.1.output.dense.weight.scale";
    let at = start + h[name]["data_offsets"][0].as_u64().unwrap() as usize;
    for (value, says) in [(f32::NAN, "holds NaN as scale 0"), (0.0, "holds 0 as scale 0"), (-1.0, "holds -1 as scale 0"), (f32::INFINITY, "holds inf as scale 0")] {
        let mut b = bytes.clone();
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        std::fs::write(&p, &b).unwrap();
        refused(&damaged, &[&format!("`{name}`"), says]);
    }
    // Missing: the scale tensor renamed away.
    let mut b = bytes.clone();
    let key = name.as_bytes();
    let pos = b[..start].windows(key.len()).position(|w| w == key).unwrap();
    b[pos + key.len() - 5..pos + key.len()].copy_from_slice(b"scalf");
    std::fs::write(&p, &b).unwrap();
    refused(&damaged, &["`encoder.layer.1.output.dense.weight.int8`", "tensor `encoder.layer.1.output.dense.weight.scale` is missing"]);
    SentenceEncoder::load(&good, &Device::flex()).expect("the undamaged file loads");
}

#[test]
fn cli_convert_writes_an_f16_minilm_and_refuses_an_output_over_its_model() {
    let t = TempDir::new("precision-cli");
    let model = model_dir();
    let out = t.0.join("minilm-f16");
    let o = iftcl(&["convert", "--dtype", "f16", model.to_str().unwrap(), out.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(said.contains("model.safetensors in f16") && said.contains("50 % of the 90.9 MB"), "{said}");
    // Every file of the folder, README and vocab.txt included; nothing half-written left.
    for entry in std::fs::read_dir(&model).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(out.join(&name).exists(), "{name:?} not copied");
    }
    assert!(!t.0.join("minilm-f16.partial").exists());
    assert_eq!(json_file(&out.join("config.json"))["torch_dtype"], "float16");

    let g = golden();
    let sentences = golden_sentences(&g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let got = SentenceEncoder::load(&out, &Device::flex()).unwrap().embed(&refs).unwrap();
    let worst_to_pytorch = worst_cosine(&got, &golden_embeddings(&g));
    eprintln!("all-MiniLM-L6-v2 f16: worst cosine to PyTorch's f32 {worst_to_pytorch:.7}");
    assert!(worst_to_pytorch >= 0.9999, "{worst_to_pytorch}");

    // Refused before anything is read or written.
    let m = model.to_str().unwrap();
    let inside = model.join("f16");
    for (target, says) in [(m.to_string(), "it is the model folder"), (inside.display().to_string(), "inside the model folder")] {
        let o = iftcl(&["convert", "--dtype", "int8", m, &target], None);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(says) && stderr(&o).contains("choose another output folder"), "{}", stderr(&o));
    }
    assert!(!inside.exists());
    let o = iftcl(&["convert", "--dtype", "int4", m, out.to_str().unwrap()], None);
    assert!(stderr(&o).contains("`int4` is not f32, f16, bf16 or int8"), "{}", stderr(&o));

    // An existing model folder is replaced only with --overwrite, and then whole; a folder that
    // holds no model never is, with or without it, and keeps its files.
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let o = iftcl(&["convert", "--dtype", "int8", m, out.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds a model folder; --overwrite replaces it"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), before, "refused, yet the folder changed");
    let o = iftcl(&["convert", "--overwrite", "--dtype", "int8", m, out.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, _) = header(&std::fs::read(out.join("model.safetensors")).unwrap());
    assert_eq!(h["__metadata__"]["iftcl.quantization"], "int8-rows-v1", "the folder was not replaced by the int8 one");
    let user = t.0.join("my-files");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("notes.txt"), "mine").unwrap();
    for flags in [&["convert", "--dtype", "f16"][..], &["convert", "--overwrite", "--dtype", "f16"][..]] {
        let o = iftcl(&[flags, &[m, user.to_str().unwrap()]].concat(), None);
        assert_eq!(o.status.code(), Some(1), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("holds no model (no config.json), so it is not replaced"), "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(user.join("notes.txt")).unwrap(), "mine");
    }
}

/// all-MiniLM-L6-v2 computing in int8 (`--dtype int8`): within ONNX Runtime's dynamic int8 of
/// the same model (worst cosine 0.9706 to PyTorch on the STS-B dev sentences), on the 24 golden
/// sentences; the f32 path unchanged beside it (the same vectors as before the switch).
#[test]
fn minilm_in_int8_compute_stays_close_to_pytorch_and_f32_is_untouched() {
    let g = golden();
    let sentences = golden_sentences(g);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let f32_model = SentenceEncoder::load(&model_dir(), &Device::flex()).unwrap();
    let before = f32_model.embed(&refs).unwrap();
    let int8 = f32_model.clone().with_compute(Compute::Int8).unwrap();
    let vectors = int8.embed(&refs).unwrap();
    let worst = worst_cosine(&vectors, &golden_embeddings(g));
    eprintln!("all-MiniLM-L6-v2 int8 compute: worst cosine to PyTorch's f32 {worst:.5} over {} sentences", refs.len());
    assert!((0.98..1.0 - 1e-7).contains(&worst), "worst cosine {worst}");
    let back = int8.with_compute(Compute::F32).unwrap();
    assert_eq!(back.embed(&refs).unwrap(), before, "f32 compute after int8 is the f32 path");
}

/// The model folder `name` of the tiny fixtures, ready for its weights.
fn prepared(name: &str) -> PreparedEncoder {
    let mut files = ModelFiles::read_dir(&tiny_dir().join(name)).unwrap();
    files.weights = Vec::new();
    PreparedEncoder::new(files).unwrap()
}

fn bits(v: &[Vec<f32>]) -> Vec<u32> {
    v.iter().flatten().map(|x| x.to_bits()).collect()
}

#[test]
fn weights_converted_as_they_arrive_give_the_same_encoder_bit_for_bit() {
    let device = Device::flex();
    let texts = ["the cat sat on the mat", "a storm over the river", "bread", "the engine of the train moved nine times"];
    for name in ["bert-cls-normalize", "mpnet"] {
        let original = SentenceEncoder::load(&tiny_dir().join(name), &device).unwrap();
        let layers = original.config.num_hidden_layers;
        for precision in [Precision::F32, Precision::F16, Precision::Bf16, Precision::Int8] {
            let file = original.safetensors_bytes_as(precision).unwrap();
            let expected = bits(&prepared(name).load(&file, &device).unwrap().embed(&texts).unwrap());
            for chunk in [1, 977, 65_536, file.len()] {
                let p = prepared(name);
                let mut incoming = p.incoming_weights();
                file.chunks(chunk).for_each(|c| incoming.push(c));
                assert_eq!((incoming.len(), incoming.expected_len()), (file.len(), Some(file.len())));
                // Every tensor the encoder reads was converted before the end: 16 a layer (an
                // int8 matrix and its scales count once), dense weights transposed.
                assert!(incoming.converted() >= 16 * layers, "{name} {precision} in chunks of {chunk}: only {} converted", incoming.converted());
                assert!(incoming.transposed_any(), "{name} {precision}: no dense weight converted early");
                let got = bits(&p.load_incoming(incoming, &device).unwrap().embed(&texts).unwrap());
                assert!(got == expected, "{name} {precision} in chunks of {chunk}: the vectors differ from the one-pass load");
            }
        }
    }
}

#[test]
fn a_damaged_file_arriving_is_refused_as_a_file_in_memory_is() {
    let device = Device::flex();
    let original = SentenceEncoder::load(&tiny_dir().join("bert-cls-normalize"), &device).unwrap();
    let file = original.safetensors_bytes_as(Precision::F16).unwrap();
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    // Cut short; a NaN in the file's last tensor; a header of garbage; nothing; the header alone.
    let mut nan = file.clone();
    let last = nan.len() - 2;
    nan[last..].copy_from_slice(&0x7e00u16.to_le_bytes());
    let mut garbage = file.clone();
    garbage[8..40].fill(b'#');
    for (what, bytes) in [("cut short", &file[..file.len() - 100]), ("a NaN", &nan[..]), ("garbage", &garbage[..]), ("empty", &[][..]), ("header only", &file[..8 + n])] {
        let expected = prepared("bert-cls-normalize").load(bytes, &device).map(|_| ()).unwrap_err().to_string();
        let p = prepared("bert-cls-normalize");
        let mut incoming = p.incoming_weights();
        bytes.chunks(333).for_each(|c| incoming.push(c));
        let got = p.load_incoming(incoming, &device).map(|_| ()).unwrap_err().to_string();
        assert_eq!(got, expected, "{what}");
        assert!(got.contains("model.safetensors"), "{what}: {got}");
    }
}
