//! Hostile model folders: the four tiny fixtures of `IFTCL_GOLDEN_TINY` (default
//! `../shared/golden/tiny`) with mutated files, fed to `ModelFiles::from_raw` +
//! `SentenceEncoder::from_files` (bytes, no disk) and, for modules.json's folders, to
//! `SentenceEncoder::load`. Every case must load (and then embed without a panic) or end in an
//! `iftcl::Error` whose message names the mutated file; a config.json mutation must also name a
//! field or a tensor. A panic (caught by `catch_unwind`, the detector only) fails the property
//! with the input that caused it; an abort or a hostile allocation kills the binary.
//!
//! Runs are deterministic (fixed seed) and write no failure files.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use iftcl::{ModelFiles, RawModelFiles, SentenceEncoder};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError};
use serde_json::{Value, json};

use crate::common::tiny_dir;

const FAMILIES: [&str; 4] = ["bert-cls-normalize", "roberta", "xlm-roberta", "mpnet"];

/// The keys of config.json a refusal may name (besides a tensor).
const CONFIG_KEYS: [&str; 15] = [
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
    "layer_norm_eps", "pad_token_id", "model_type", "relative_attention_num_buckets", "position_embedding_type",
];

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(0x1f7c_1616), max_shrink_iters: 256, ..Config::default() }
}

/// The tiny fixtures (`IFTCL_GOLDEN_TINY`, default `../shared/golden/tiny`).
/// The files of each fixture, read once, with prompts added (the fixtures have none).
fn bases() -> &'static [RawModelFiles] {
    static BASES: OnceLock<Vec<RawModelFiles>> = OnceLock::new();
    BASES.get_or_init(|| {
        FAMILIES
            .iter()
            .map(|f| {
                let dir = tiny_dir().join(f);
                let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
                let st = json!({"prompts": {"query": "query: ", "passage": ""}, "default_prompt_name": "query", "similarity_fn_name": "cosine"});
                RawModelFiles {
                    config: read("config.json"),
                    weights: read("model.safetensors"),
                    tokenizer: read("tokenizer.json"),
                    modules: Some(read("modules.json")),
                    pooling: Some(read("1_Pooling/config.json")),
                    sentence_bert_config: Some(read("sentence_bert_config.json")),
                    st_config: Some(serde_json::to_vec(&st).unwrap()),
                    module_files: Vec::new(),
                    companions: Vec::new(),
                }
            })
            .collect()
    })
}

/// How a case ended: loaded (`None`), or the error's message.
fn outcome(raw: RawModelFiles, origin: &Path, from_disk: bool) -> Result<Option<String>, String> {
    let run = || -> iftcl::Result<()> {
        let device = iftcl::device::cpu_device().device;
        let encoder = if from_disk { SentenceEncoder::load(origin, &device)? } else { SentenceEncoder::from_files(ModelFiles::from_raw(raw, origin)?, &device)? };
        // A model that loads must also run: its embedding may be refused, never panic.
        let _ = encoder.embed(&["A man plays a guitar.", "Two dogs run through a snowy field, fast."]);
        Ok(())
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => Ok(None),
        Ok(Err(e)) => Ok(Some(e.to_string())),
        Err(p) => Err(p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()),
    }
}

/// Whether `message` names the file `name` itself (not `sentence_bert_config.json` for
/// `config.json`).
fn names_file(message: &str, name: &str) -> bool {
    message.match_indices(name).any(|(i, _)| !message[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// Runs one case: no panic; an error names `file` (and, if `fields` is not empty, one of
/// `fields` or a tensor).
fn check(family: usize, raw: RawModelFiles, file: &str, fields: &[&str], what: &str) -> Result<(), TestCaseError> {
    let origin = PathBuf::from("fuzz").join(FAMILIES[family]);
    check_at(family, raw, &origin, false, file, fields, what)
}

fn check_at(family: usize, raw: RawModelFiles, origin: &Path, disk: bool, file: &str, fields: &[&str], what: &str) -> Result<(), TestCaseError> {
    let name = FAMILIES[family];
    match outcome(raw, origin, disk) {
        Err(panic) => Err(TestCaseError::fail(format!("{name}: {what}: the loader panicked: {panic}"))),
        Ok(None) => Ok(()),
        Ok(Some(message)) => {
            prop_assert!(names_file(&message, file), "{name}: {what}: the error does not name {file}: {message}");
            let named = fields.is_empty() || message.contains("tensor `") || fields.iter().any(|f| message.contains(f));
            prop_assert!(named, "{name}: {what}: the error names no field: {message}");
            Ok(())
        }
    }
}

/// Values a hostile file puts anywhere: wrong types, zero, huge numbers, other families' names.
fn hostile() -> impl Strategy<Value = Value> {
    let pool = vec![
        json!(0), json!(1), json!(2), json!(3), json!(-1), json!(63), json!(64), json!(65), json!(128), json!(130), json!(2000),
        json!(1_000_000_000_000u64), json!(1u64 << 40), json!(u32::MAX), json!(u64::MAX), json!(1.5), json!(1e308), json!(-0.0),
        json!("64"), json!(""), json!(null), json!(true), json!(false), json!([]), json!({}), json!([64]), json!([1u64 << 40, 1u64 << 40]),
        json!([2000, 64]), json!([64, 64]), json!([0, 64]), json!("bert"), json!("roberta"), json!("xlm-roberta"), json!("mpnet"),
        json!("modernbert"), json!("llama"), json!("relu"), json!("silu"), json!("F16"), json!("BF16"), json!("F64"), json!("I64"),
        json!("U8"), json!("BOOL"), json!("F8_E4M3"), json!("F4"), json!("sentence_transformers.models.Pooling"),
        json!("sentence_transformers.models.Normalize"), json!("2_Normalize"), json!("query"), json!({"query": 5}),
    ];
    prop_oneof![4 => select(pool), 1 => any::<i64>().prop_map(Value::from), 1 => "[a-z_.]{0,12}".prop_map(Value::from)]
}

/// An edit at a path of up to `depth` steps, each an index into the keys or elements found there
/// (modulo their count): `None` removes what is there, `Some` replaces it.
fn edit(depth: usize) -> impl Strategy<Value = (Vec<usize>, Option<Value>)> {
    (prop::collection::vec(any::<usize>(), 1..=depth), prop::option::weighted(0.8, hostile()))
}

fn apply(doc: &mut Value, path: &[usize], value: Option<Value>) {
    let (step, rest) = (path[0], &path[1..]);
    let child_done = match doc {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(step % m.len()).cloned().unwrap_or_default();
            if rest.is_empty() || !m[&key].is_object() && !m[&key].is_array() {
                match value {
                    Some(v) => m.insert(key, v),
                    None => m.remove(&key),
                };
                return;
            }
            &mut m[&key]
        }
        Value::Array(a) if !a.is_empty() => {
            let i = step % a.len();
            if rest.is_empty() || !a[i].is_object() && !a[i].is_array() {
                match value {
                    Some(v) => a[i] = v,
                    None => drop(a.remove(i)),
                }
                return;
            }
            &mut a[i]
        }
        _ => {
            if let Some(v) = value {
                *doc = v;
            }
            return;
        }
    };
    apply(child_done, rest, value)
}

fn edited(bytes: &[u8], edits: &[(Vec<usize>, Option<Value>)]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(bytes).expect("fixture JSON parses");
    for (path, value) in edits {
        apply(&mut doc, path, value.clone());
    }
    serde_json::to_vec_pretty(&doc).unwrap()
}

/// Byte-level damage: truncation at a fraction of the length, or a byte overwritten.
#[derive(Debug, Clone)]
enum Damage { Truncate(f64), Overwrite(f64, u8) }

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![(0.0..1.0).prop_map(Damage::Truncate), (0.0..1.0, any::<u8>()).prop_map(|(at, b)| Damage::Overwrite(at, b))]
}

fn damaged(bytes: &[u8], d: &Damage) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match *d {
        Damage::Truncate(at) => out.truncate((at * bytes.len() as f64) as usize),
        Damage::Overwrite(at, b) => {
            if !out.is_empty() {
                let i = ((at * out.len() as f64) as usize).min(out.len() - 1);
                out[i] = b;
            }
        }
    }
    out
}

/// The JSON files of a folder a property mutates: (file named in errors, accessor).
type Slot = (&'static str, fn(&mut RawModelFiles) -> &mut Vec<u8>);
const JSON_FILES: [Slot; 6] = [
    ("config.json", |r| &mut r.config),
    ("tokenizer.json", |r| &mut r.tokenizer),
    ("modules.json", |r| r.modules.as_mut().unwrap()),
    ("1_Pooling/config.json", |r| r.pooling.as_mut().unwrap()),
    ("sentence_bert_config.json", |r| r.sentence_bert_config.as_mut().unwrap()),
    ("config_sentence_transformers.json", |r| r.st_config.as_mut().unwrap()),
];

proptest! {
    #![proptest_config(config(2000))]

    /// Structure: values of the wrong type, zero or huge, removed keys, anywhere in any JSON file
    /// (config.json: 1 to 3 edits of its top-level fields; others: up to 3 levels deep).
    #[test]
    fn json_files_with_hostile_values(family in 0..4usize, file in 0..6usize, edits in prop::collection::vec(edit(3), 1..=3)) {
        let mut raw = bases()[family].clone();
        let (name, slot) = JSON_FILES[file];
        let edits: Vec<_> = if file == 0 { edits.into_iter().map(|(p, v)| (p[..1].to_vec(), v)).collect() } else { edits };
        let bytes = edited(slot(&mut raw), &edits);
        *slot(&mut raw) = bytes;
        let fields: &[&str] = if file == 0 { &CONFIG_KEYS } else { &[] };
        check(family, raw, name, fields, &format!("{name} edited {edits:?}"))?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Syntax: truncated or overwritten bytes of any JSON file.
    #[test]
    fn json_files_with_damaged_bytes(family in 0..4usize, file in 0..6usize, d in damage()) {
        let mut raw = bases()[family].clone();
        let (name, slot) = JSON_FILES[file];
        let bytes = damaged(slot(&mut raw), &d);
        *slot(&mut raw) = bytes;
        check(family, raw, name, &[], &format!("{name} damaged {d:?}"))?;
    }
}

/// Splits safetensors bytes into the JSON header and the body.
fn split_safetensors(bytes: &[u8]) -> (Value, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), &bytes[8 + n..])
}

/// How the 8-byte length prefix is written: true, off by `delta`, or any value.
#[derive(Debug, Clone)]
enum Prefix { True, Off(i64), Any(u64) }

proptest! {
    #![proptest_config(config(2000))]

    /// model.safetensors: header edits (dtypes, shapes, data_offsets, names, removed tensors),
    /// the length prefix, the header's bytes, and the body cut short or extended.
    #[test]
    fn safetensors_with_hostile_headers(
        family in 0..4usize,
        edits in prop::collection::vec(edit(3), 0..=3),
        renames in prop::collection::vec((any::<usize>(), "(bert\\.|roberta\\.|model\\.|cls\\.)?[a-z_.0-9]{0,8}"), 0..=1),
        prefix in prop_oneof![4 => Just(Prefix::True), 1 => (-9i64..9).prop_map(Prefix::Off), 1 => any::<u64>().prop_map(Prefix::Any)],
        header_damage in prop::option::weighted(0.15, damage()),
        body in prop_oneof![4 => Just(0i64), 1 => -5000i64..5000],
    ) {
        let base = &bases()[family];
        let (mut header, data) = split_safetensors(&base.weights);
        for (path, value) in &edits {
            apply(&mut header, path, value.clone());
        }
        if let Value::Object(m) = &mut header {
            for (k, new) in &renames {
                let Some(old) = m.keys().nth(k % m.len().max(1)).cloned() else { continue };
                if let Some(v) = m.remove(&old) {
                    m.insert(new.clone(), v);
                }
            }
        }
        let mut h = serde_json::to_vec(&header).unwrap();
        if let Some(d) = &header_damage {
            h = damaged(&h, d);
        }
        let len = match prefix {
            Prefix::True => h.len() as u64,
            Prefix::Off(d) => (h.len() as u64).wrapping_add_signed(d),
            Prefix::Any(v) => v,
        };
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(&h);
        let keep = (data.len() as i64 + body.min(0)).max(0) as usize;
        bytes.extend_from_slice(&data[..keep]);
        bytes.extend(std::iter::repeat_n(0x7fu8, body.max(0) as usize));
        let mut raw = base.clone();
        raw.weights = bytes;
        let what = format!("model.safetensors: edits {edits:?}, renames {renames:?}, prefix {prefix:?}, header damage {header_damage:?}, body {body:+}");
        check(family, raw, "model.safetensors", &[], &what)?;
    }

}

proptest! {
    #![proptest_config(config(500))]

    /// model.safetensors: values overwritten anywhere (NaN, infinities, subnormals).
    #[test]
    fn safetensors_with_damaged_bytes(family in 0..4usize, d in damage()) {
        let mut raw = bases()[family].clone();
        raw.weights = damaged(&raw.weights, &d);
        check(family, raw, "model.safetensors", &[], &format!("model.safetensors damaged {d:?}"))?;
    }
}

/// A fresh copy of fixture `family` in the temporary folder (never in the repository).
fn folder_copy(family: usize, tag: &str) -> PathBuf {
    let src = tiny_dir().join(FAMILIES[family]);
    let dir = std::env::temp_dir().join(format!("iftcl-loader-props-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    for name in ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
        std::fs::copy(src.join(name), dir.join(name)).unwrap();
    }
    dir
}

proptest! {
    #![proptest_config(config(48))]

    /// On disk: modules.json naming the Pooling module's folder as a missing, nested, absolute or
    /// parent path (`SentenceEncoder::load`).
    #[test]
    fn modules_json_naming_other_folders(family in 0..4usize, folder in "(1_Pooling|2_Missing|/nonexistent|\\.\\./x|1_Pooling/deeper|)", kind in select(vec!["Pooling", "Normalize", "Dense"])) {
        let dir = folder_copy(family, "modules");
        let modules = json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": folder, "type": format!("sentence_transformers.models.{kind}")},
        ]);
        std::fs::write(dir.join("modules.json"), serde_json::to_vec(&modules).unwrap()).unwrap();
        // The error names modules.json, or the config.json of the folder it names when that is not a pooling config.
        let read = dir.join(&folder).join("config.json").display().to_string();
        let file = if kind == "Pooling" && std::path::Path::new(&read).is_file() { read } else { "modules.json".into() };
        let result = check_at(family, RawModelFiles::default(), &dir, true, &file, &[], &format!("modules.json path {folder:?} type {kind}"));
        std::fs::remove_dir_all(&dir).unwrap();
        result?;
    }
}

/// Loads `family` with `change` applied to its files, expecting a refusal naming `file` and `says`.
fn refused(family: usize, change: impl FnOnce(&mut RawModelFiles), file: &str, says: &str) {
    let mut raw = bases()[family].clone();
    change(&mut raw);
    match outcome(raw, &PathBuf::from("fuzz").join(FAMILIES[family]), false) {
        Ok(Some(message)) => assert!(names_file(&message, file) && message.contains(says), "{file}: expected `{says}`: {message}"),
        other => panic!("{file}: expected a refusal naming `{says}`, got {other:?}"),
    }
}

fn with(bytes: &mut Vec<u8>, key: &str, value: Value) {
    let mut doc: Value = serde_json::from_slice(bytes).unwrap();
    doc[key] = value;
    *bytes = serde_json::to_vec(&doc).unwrap();
}

/// The hostile inputs the properties draw, each with the refusal it must get: no allocation
/// sized by the file, the field or tensor named.
#[test]
fn named_hostile_inputs_are_refused_before_allocating() {
    for (family, raw) in FAMILIES.iter().zip(bases()) {
        assert_eq!(outcome(raw.clone(), Path::new("fuzz/base"), false), Ok(None), "the unmutated {family} loads");
    }
    let big = 1_000_000_000_000u64;
    for (key, value, says) in [
        ("vocab_size", json!(big), "vocab_size"),
        ("num_hidden_layers", json!(big), "num_hidden_layers"),
        ("hidden_size", json!(big), "hidden_size"),
        ("intermediate_size", json!(big), "intermediate_size"),
        ("max_position_embeddings", json!(big), "max_position_embeddings"),
        ("hidden_size", json!(0), "hidden_size"),
        ("num_attention_heads", json!(3), "num_attention_heads"),
        ("hidden_act", json!(0), "hidden_act"),
        ("hidden_size", json!("64"), "hidden_size"),
        ("model_type", json!("modernbert"), "model_type"),
        ("pad_token_id", json!(u64::MAX), "pad_token_id"),
    ] {
        refused(0, |r| with(&mut r.config, key, value), "config.json", says);
    }
    refused(3, |r| with(&mut r.config, "relative_attention_num_buckets", json!(2)), "config.json", "relative_attention_num_buckets");
    // A header claiming a [2^40, 2^40] tensor: refused by the header's own bounds.
    refused(0, |r| {
        let (mut header, body) = split_safetensors(&r.weights);
        let name = header.as_object().unwrap().keys().find(|k| k.contains("word_embeddings")).unwrap().clone();
        header[&name]["shape"] = json!([1u64 << 40, 1u64 << 40]);
        let h = serde_json::to_vec(&header).unwrap();
        r.weights = [&(h.len() as u64).to_le_bytes()[..], &h, body].concat();
    }, "model.safetensors", "corrupt");
    refused(0, |r| with(r.pooling.as_mut().unwrap(), "pooling_mode_mean_tokens", json!(true)), "1_Pooling/config.json", "several pooling modes");
    refused(0, |r| with(r.pooling.as_mut().unwrap(), "pooling_mode_lasttoken", json!(true)), "1_Pooling/config.json", "pooling_mode_lasttoken");
    refused(0, |r| with(r.st_config.as_mut().unwrap(), "prompts", json!({"query": 5})), "config_sentence_transformers.json", "prompts");
    refused(0, |r| with(r.st_config.as_mut().unwrap(), "default_prompt_name", json!("nope")), "config_sentence_transformers.json", "default_prompt_name");
    refused(0, |r| with(r.st_config.as_mut().unwrap(), "default_prompt_name", json!(7)), "config_sentence_transformers.json", "default_prompt_name");
    refused(0, |r| with(r.sentence_bert_config.as_mut().unwrap(), "max_seq_length", json!(1)), "sentence_bert_config.json", "max_seq_length");
    refused(0, |r| r.tokenizer.truncate(r.tokenizer.len() / 2), "tokenizer.json", "EOF");
    refused(0, |r| r.modules = Some(b"{\"idx\": 0}".to_vec()), "modules.json", "invalid type");
}
