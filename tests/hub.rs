//! `--model org/name`: models fetched by Hub id into the Hugging Face cache, against a stand-in
//! Hub on 127.0.0.1 (the real one is not reachable from CI) serving the tiny RoBERTa and MPNet
//! fixtures of `../shared/golden/tiny/`. Each case runs the `iftcl` binary with its own
//! `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE`.

#[path = "hub/server.rs"]
mod server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use iftcl::SentenceEncoder;
use iftcl::hub::HubOptions;
use server::{Repo, Server, dead_endpoint};

fn tiny(family: &str) -> PathBuf {
    let p = std::env::var("IFTCL_GOLDEN_TINY").map(PathBuf::from).unwrap_or_else(|_| root().join("../shared/golden/tiny"));
    p.join(family)
}

/// The stand-in Hub: two public repos, a gated one (token `secret`), one without tokenizer.json.
fn hub(t: &TempDir) -> Server {
    let broken = t.0.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny("roberta").join(f), broken.join(f)).unwrap();
    }
    let repo = |dir: PathBuf, token: Option<&str>| Repo { dir, token: token.map(str::to_string) };
    Server::start(HashMap::from([
        ("acme/tiny-roberta".to_string(), repo(tiny("roberta"), None)),
        ("acme/tiny-mpnet".to_string(), repo(tiny("mpnet"), None)),
        ("acme/gated".to_string(), repo(tiny("roberta"), Some("secret"))),
        ("acme/no-tokenizer".to_string(), repo(broken, None)),
    ]))
}

/// `iftcl ARGS` with only the given Hugging Face variables set.
fn command(args: &[&str], home: &Path, endpoint: &str, extra: &[(&str, &str)]) -> Command {
    let mut c = Command::new(iftcl_bin());
    c.args(args).env("HF_HOME", home).env("HF_ENDPOINT", endpoint);
    // A proxy from the environment would stand between the client and 127.0.0.1.
    for v in ["HF_TOKEN", "HF_HUB_OFFLINE", "IFTCL_MODEL", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
        c.env_remove(v);
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

fn run(args: &[&str], home: &Path, endpoint: &str, extra: &[(&str, &str)]) -> Output {
    command(args, home, endpoint, extra).output().unwrap()
}

fn vectors(o: &Output) -> Vec<Vec<f32>> {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const INPUT: &[u8] = b"A man is playing a guitar.\nThe weather is cold today.\n";

fn embed(model: &str, home: &Path, endpoint: &str, extra: &[(&str, &str)]) -> Output {
    let mut c = command(&["embed", "--device", "cpu", "--model", model], home, endpoint, extra);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(INPUT).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_hub_id_downloads_into_the_cache_and_embeds_like_the_folder() {
    let t = TempDir::new("hub-ok");
    let server = hub(&t);
    let home = t.0.join("hf");
    let mut online = Vec::new();
    for (id, family) in [("acme/tiny-roberta", "roberta"), ("acme/tiny-mpnet", "mpnet")] {
        let got = vectors(&embed(id, &home, &server.endpoint, &[]));
        online.push(got.clone());
        let local = vectors(&embed(tiny(family).to_str().unwrap(), &home, &server.endpoint, &[]));
        assert_eq!(got, local, "{id}: the downloaded model embeds as its folder does");
        // The standard cache layout, shared with Python's huggingface_hub.
        let snapshots = home.join(format!("hub/models--{}/snapshots", id.replace('/', "--")));
        let snapshot = std::fs::read_dir(&snapshots).unwrap().next().unwrap().unwrap().path();
        for f in ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json"] {
            assert!(snapshot.join(f).is_file(), "{id}: {f} not in {}", snapshot.display());
        }
    }
    // Offline, with the server gone: the cache serves the model; a model never fetched is an
    // error that says so.
    let dead = dead_endpoint();
    let offline = vectors(&embed("acme/tiny-roberta", &home, &dead, &[("HF_HUB_OFFLINE", "1")]));
    assert_eq!(offline, online[0], "offline, the cached acme/tiny-roberta embeds as it did online");
    let o = embed("acme/never-fetched", &home, &dead, &[("HF_HUB_OFFLINE", "1")]);
    assert!(!o.status.success() && stderr(&o).contains("not in the cache"), "{}", stderr(&o));
}

#[test]
fn a_revision_is_asked_for_by_name() {
    let t = TempDir::new("hub-rev");
    let server = hub(&t);
    let o = run(&["similarity", "--device", "cpu", "--model", "acme/tiny-roberta", "--revision", "v1.0", "a", "b"], &t.0.join("hf"), &server.endpoint, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(server.requests().iter().any(|r| r.contains("/acme/tiny-roberta/resolve/v1.0/config.json")), "{:?}", server.requests());
}

#[test]
fn hub_failures_are_clear_errors() {
    let t = TempDir::new("hub-err");
    let server = hub(&t);
    let home = t.0.join("hf");
    let cases: [(&str, String, Vec<(&str, &str)>, &[&str]); 4] = [
        ("acme/no-such-model", server.endpoint.clone(), vec![], &["acme/no-such-model", "no such repository"]),
        ("acme/no-tokenizer", server.endpoint.clone(), vec![], &["acme/no-tokenizer", "tokenizer.json", "no such file"]),
        ("acme/gated", server.endpoint.clone(), vec![], &["acme/gated", "gated or private", "HF_TOKEN"]),
        ("acme/tiny-roberta", dead_endpoint(), vec![], &["acme/tiny-roberta", "network error"]),
    ];
    for (id, endpoint, env, says) in cases {
        let o = embed(id, &home, &endpoint, &env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{id}: {err}");
        assert!(!err.contains("panicked"), "{id}: {err}");
        for s in says {
            assert!(err.contains(s), "{id}: `{s}` missing from: {err}");
        }
    }
    // The gated repo with its token (HF_TOKEN, as Python reads it).
    let ok = embed("acme/gated", &home, &server.endpoint, &[("HF_TOKEN", "secret")]);
    assert_eq!(vectors(&ok).len(), 2);
}

#[test]
fn the_library_loads_by_id_and_train_starts_from_a_hub_id() {
    let t = TempDir::new("hub-lib");
    let server = hub(&t);
    let options = HubOptions { endpoint: Some(server.endpoint.clone()), cache_dir: Some(t.0.join("cache")), ..HubOptions::default() };
    let dev = iftcl::device::cpu_device().device;
    let enc = SentenceEncoder::from_hub("acme/tiny-mpnet", &options, &dev).unwrap();
    assert_eq!(enc.dim(), 64);
    // `iftcl train --model org/name` fetches the start model, then trains as from a folder.
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let mut args = train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), "3");
    args.extend(["--model", "acme/tiny-roberta"]);
    let o = run(&args, &t.0.join("hf"), &server.endpoint, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("last/model.safetensors").is_file());
}
