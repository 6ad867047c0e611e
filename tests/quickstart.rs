//! The library example for Rust apps (crates/iftcl/examples/quickstart.rs, README "From Rust")
//! run as a newcomer runs it, its output read: the golden pair's similarity to four digits, the
//! search's top hit, three fine-tune steps with finite losses, the tuned model saved, loaded
//! and its index embedded again.

use crate::common::*;

#[test]
fn the_quickstart_example_prints_what_it_computes() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples/quickstart");
    assert!(bin.is_file(), "{} not built: run `cargo build --release --workspace --all-targets` first", bin.display());
    let t = TempDir::new("quickstart");
    let tuned = t.0.join("tuned");
    let o = std::process::Command::new(&bin)
        .args(["--device", "cpu", model_dir().to_str().unwrap(), tuned.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let line = |prefix: &str| -> &str { out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}")) };
    let golden = golden()["cosine_0_1"].as_f64().unwrap();
    let similarity = line("similarity of [\"A man is playing a guitar.\", \"A man plays the guitar on stage.\"]: ");
    assert!(similarity.ends_with(&format!(": {golden:.4}")), "{similarity} vs the golden {golden:.4}");
    let search = line("search \"a kitten napping\": ");
    assert!(search.starts_with("search \"a kitten napping\": [(\"My cat sleeps on the sofa.\", "), "the cat note first: {search}");
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(steps.len(), 3, "{out}");
    for (i, s) in steps.iter().enumerate() {
        let loss: f64 = s.strip_prefix(&format!("step {}/3: loss ", i + 1)).unwrap_or_else(|| panic!("{s}")).parse().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{s}");
    }
    assert!(line("saved to ").starts_with(&format!("saved to {}; similarity with the tuned model: ", tuned.display())), "{out}");
    assert!(tuned.join("model.safetensors").is_file(), "the tuned model was not saved");
    assert_eq!(line("index embedded again"), "index embedded again with the tuned model: 3 documents");
}
