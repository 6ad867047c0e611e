//! The library API in one place, for Rust apps that are not Tauri apps: load a model folder,
//! embed, compare, search a small semantic index, fine-tune a few IFTCL steps (with progress
//! and a cancel flag), and save the tuned model.
//!
//! ```text
//! cargo run --release --example quickstart -- models/all-MiniLM-L6-v2 /tmp/tuned-model
//! ```
//! Arguments: the model folder (default `$IFTCL_MODEL`, else `models/all-MiniLM-L6-v2`) and the
//! folder to save the tuned model in (default: a temporary folder). `--device cpu|gpu|auto`
//! may come first.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use iftcl::cosine;
use iftcl::index::SemanticIndex;
use iftcl::train::{TuneOptions, tune};
use iftcl::{DeviceSpec, SentenceEncoder, device};

fn main() -> iftcl::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let spec = match args.iter().position(|a| a == "--device") {
        Some(i) if i + 1 < args.len() => {
            let d = args.remove(i + 1);
            args.remove(i);
            d.parse()?
        }
        _ => DeviceSpec::Cpu,
    };
    let model_dir = args.first().map(PathBuf::from).or_else(|| std::env::var_os("IFTCL_MODEL").map(PathBuf::from)).unwrap_or_else(|| "models/all-MiniLM-L6-v2".into());
    let out_dir = args.get(1).map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join(format!("iftcl-quickstart-{}", std::process::id())));

    // 1. A device and a model.
    let selected = device::select(spec)?;
    let encoder = SentenceEncoder::load(&model_dir, &selected.device)?;
    println!("model {} ({} dimensions) on {}", model_dir.display(), encoder.dim(), selected.description);

    // 2. Embeddings and a similarity.
    let pair = ["A man is playing a guitar.", "A man plays the guitar on stage."];
    let v = encoder.embed(&pair)?;
    println!("similarity of {pair:?}: {:.4}", cosine(&v[0], &v[1]));

    // 3. A semantic index: add, search, save.
    let notes = ["My cat sleeps on the sofa.", "Stocks fell sharply on Monday.", "Boil the pasta for ten minutes."];
    let mut index = SemanticIndex::new(encoder.fingerprint()?, encoder.dim());
    for (i, (text, vector)) in notes.iter().zip(encoder.embed(&notes)?).enumerate() {
        index.upsert(format!("note-{i}"), text.to_string(), vector)?;
    }
    let hits = index.search(&encoder.embed(&["a kitten napping"])?[0], 2)?;
    println!("search \"a kitten napping\": {:?}", hits.iter().map(|h| (&h.text, h.score)).collect::<Vec<_>>());

    // 4. A few fine-tuning steps on the notes (the encoder itself is left as it was).
    let sentences: Vec<String> = notes.iter().map(|s| s.to_string()).collect();
    let options = TuneOptions { steps: 3, batch_size: 3, ..TuneOptions::default() };
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let tuned = tune(&encoder, &sentences, &options, &cancel, |p| println!("step {}/{}: loss {:.3e}", p.step, p.steps, p.loss))?;
    println!("{} steps in {:.2} s", tuned.losses.len(), start.elapsed().as_secs_f64());

    // 5. The tuned model saved as a sentence-transformers folder, then loaded again.
    tuned.encoder.save(&out_dir)?;
    let reloaded = SentenceEncoder::load(&out_dir, &selected.device)?;
    let w = reloaded.embed(&pair)?;
    println!("saved to {}; similarity with the tuned model: {:.4}", out_dir.display(), cosine(&w[0], &w[1]));
    index.rebuild(&reloaded, reloaded.fingerprint()?)?;
    println!("index embedded again with the tuned model: {} documents", index.len());
    Ok(())
}
