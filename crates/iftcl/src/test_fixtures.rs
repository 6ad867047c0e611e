//! Inputs of the library's own unit tests: the tiny seeded model folders of
//! `$IFTCL_GOLDEN_TINY` (default `../shared/golden/tiny` beside the repository), small enough
//! that a training run takes well under a second on the CPU.

use std::path::{Path, PathBuf};

use crate::device::cpu_device;
use crate::encoder::SentenceEncoder;

/// The folder of the tiny fixture `name` (bert-cls-normalize, roberta, xlm-roberta, mpnet).
pub(crate) fn tiny_model_dir(name: &str) -> PathBuf {
    let root = std::env::var("IFTCL_GOLDEN_TINY").map(PathBuf::from).unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/tiny"));
    let dir = root.join(name);
    assert!(dir.is_dir(), "the tiny model {} not found (set IFTCL_GOLDEN_TINY)", dir.display());
    dir
}

/// The tiny BERT fixture on the CPU.
pub(crate) fn tiny_encoder() -> SentenceEncoder {
    SentenceEncoder::load(&tiny_model_dir("bert-cls-normalize"), &cpu_device().device).expect("the tiny model loads")
}

/// `n` distinct short sentences.
pub(crate) fn sentences(n: usize) -> Vec<String> {
    let things = ["cat", "dog", "river", "market", "guitar", "train", "garden", "storm", "bread", "window", "engine", "forest"];
    (0..n).map(|i| format!("the {} near the {} moved {} times", things[i % things.len()], things[(i * 7 + 3) % things.len()], i + 1)).collect()
}

/// A scratch folder removed on drop.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("iftcl-unit-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("a scratch folder");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
