//! The library in a few lines: load a model, embed, compare, fine-tune a few IFTCL steps on
//! sentences held in memory, save a sentence-transformers folder.
//!
//! `cargo build --release --workspace --examples`, then run `release/examples/quickstart` from
//! the Cargo target folder in the repository root (after `scripts/fetch-model.sh`).

use std::path::Path;

use iftcl::train::{FineTuner, TrainConfig};
use iftcl::{DeviceSpec, SentenceEncoder, device, eval::cosine};

fn main() -> iftcl::Result<()> {
    // `auto`: the first hardware GPU wgpu finds (Vulkan, Metal, DX12), else the CPU.
    let selected = device::select(DeviceSpec::Auto)?;
    let encoder = SentenceEncoder::load(Path::new("models/all-MiniLM-L6-v2"), &selected.device)?;

    let v = encoder.embed(&["A man is playing a guitar.", "A man plays the guitar on stage."])?;
    println!("similarity {:.4}", cosine(&v[0], &v[1]));

    // A few IFTCL steps on sentences held in memory, then save a sentence-transformers folder.
    let notes: Vec<String> = ["The cat sat on the mat.", "A dog runs in the park.", "Stocks fell sharply today.", "It is raining in Paris."]
        .iter().map(|s| s.to_string()).collect();
    let mut tuner = FineTuner::new(&encoder, TrainConfig { batch_size: 4, ..TrainConfig::default() })?;
    for _ in 0..3 {
        let loss = tuner.step(&notes, 1e-5)?;
        println!("step {} loss {:.4}", tuner.steps_done(), loss.read()?.total);
    }
    tuner.encoder().save(Path::new("runs/quickstart-model"))?;
    Ok(())
}
