//! Paths and helpers shared by the end-to-end tests.
//!
//! Inputs come through variables users can point at their own copies:
//! `IFTCL_MODEL` (default `models/all-MiniLM-L6-v2`, from scripts/fetch-model.sh),
//! `IFTCL_DATA_DIR` (default `../shared/data`), `IFTCL_GOLDEN` (default
//! `../shared/golden/all-MiniLM-L6-v2.json`: token ids and embeddings of 24 sentences written by
//! PyTorch sentence-transformers with mean pooling and L2 normalisation).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use iftcl::SentenceEncoder;
use iftcl::device::{self, DeviceSpec};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn must_exist(p: PathBuf, what: &str) -> PathBuf {
    assert!(p.exists(), "{what} not found at {} (see tests/common/mod.rs for the variables)", p.display());
    p
}

pub fn model_dir() -> PathBuf {
    let p = std::env::var("IFTCL_MODEL").map(PathBuf::from).unwrap_or_else(|_| root().join("models/all-MiniLM-L6-v2"));
    must_exist(p, "the model (run scripts/fetch-model.sh)")
}

pub fn data_dir() -> PathBuf {
    let p = std::env::var("IFTCL_DATA_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("../shared/data"));
    must_exist(p, "the data folder (IFTCL_DATA_DIR)")
}

/// The golden file, read once per process.
pub fn golden() -> &'static serde_json::Value {
    static GOLDEN: OnceLock<serde_json::Value> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        let p = std::env::var("IFTCL_GOLDEN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root().join("../shared/golden/all-MiniLM-L6-v2.json"));
        let p = must_exist(p, "the golden file (IFTCL_GOLDEN)");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    })
}

/// The default model on `spec` (the CPU, or the wgpu adapter `DeviceSpec::Gpu(None)` picks),
/// loaded once per process and device, with the device's description. Each call returns a
/// clone, which shares the weights (burn's tensors are reference counted and never changed in
/// place), so a test may reconfigure its copy (`with_batch_size`, ...) without touching others'.
pub fn encoder(spec: DeviceSpec) -> (SentenceEncoder, String) {
    type Loaded = Mutex<Option<(SentenceEncoder, String)>>;
    static CPU: Loaded = Mutex::new(None);
    static WGPU: Loaded = Mutex::new(None);
    let slot = match spec {
        DeviceSpec::Cpu => &CPU,
        DeviceSpec::Gpu(None) => &WGPU,
        other => panic!("no shared encoder for {other:?}"),
    };
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let selected = device::select(spec).unwrap();
        (SentenceEncoder::load(&model_dir(), &selected.device).unwrap(), selected.description)
    })
    .clone()
}

pub fn golden_sentences(g: &serde_json::Value) -> Vec<String> {
    g["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

pub fn golden_embeddings(g: &serde_json::Value) -> Vec<Vec<f32>> {
    g["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

/// The tiny seeded models of every encoder family (../shared/golden/tiny, or
/// $IFTCL_GOLDEN_TINY).
pub fn tiny_dir() -> PathBuf {
    let p = std::env::var("IFTCL_GOLDEN_TINY").map(PathBuf::from).unwrap_or_else(|_| root().join("../shared/golden/tiny"));
    assert!(p.is_dir(), "the tiny golden models not found at {} (IFTCL_GOLDEN_TINY)", p.display());
    p
}

/// The `iftcl` binary of the same build (target/<profile>/iftcl, beside this test's deps/).
pub fn iftcl_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(if cfg!(windows) { "iftcl.exe" } else { "iftcl" });
    assert!(bin.is_file(), "{} not built: run `cargo build --release --workspace` first", bin.display());
    bin
}

pub fn iftcl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_iftcl(None, args, stdin)
}

/// [`iftcl`] run in the folder `cwd` (where CubeCL looks for its `cubecl.toml` first, see
/// [`cubecl_kernel_log`]).
pub fn iftcl_in(cwd: &Path, args: &[&str]) -> Output {
    run_iftcl(Some(cwd), args, None)
}

fn run_iftcl(cwd: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(iftcl_bin());
    cmd.args(args).env("IFTCL_MODEL", model_dir()).env("RUST_LOG", "warn");
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut sin = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            sin.write_all(data).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("iftcl-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of the default model folder in which `edit` may change files; the weights are
/// hard-linked or copied only when `copy_weights`.
pub fn model_copy(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    let src = model_dir();
    for f in ["config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json", "model.safetensors"] {
        if src.join(f).exists() {
            std::fs::copy(src.join(f), t.0.join(f)).unwrap();
        }
    }
    std::fs::create_dir_all(t.0.join("1_Pooling")).unwrap();
    std::fs::copy(src.join("1_Pooling/config.json"), t.0.join("1_Pooling/config.json")).unwrap();
    t
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    // A NaN anywhere fails here, with its index, instead of making a comparison false or true
    // by accident.
    iftcl::compare::max_abs_diff(a, b).unwrap_or_else(|e| panic!("cosine: {e}"));
    iftcl::cosine(a, b)
}

/// Parity of vectors against their references, the measure every parity test uses: for each
/// pair the relative L2 error ‖a − b‖ / ‖b‖ and the largest absolute difference, each within its
/// bound; fails on the first NaN or infinity. Prints and returns the worst of each over all
/// pairs, `(rel_l2, max_abs)`.
#[track_caller]
pub fn assert_parity(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], max_rel_l2: f64, max_abs: f64) -> (f64, f64) {
    assert_eq!(got.len(), want.len(), "{what}: number of vectors");
    let (mut worst_rel, mut worst_abs) = (0.0f64, 0.0f64);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: vector {i}: width");
        let rel = iftcl::compare::rel_l2_err(a, b).unwrap_or_else(|e| panic!("{what}: vector {i}: {e}"));
        let abs = iftcl::compare::max_abs_diff(a, b).unwrap_or_else(|e| panic!("{what}: vector {i}: {e}"));
        assert!(rel <= max_rel_l2, "{what}: vector {i}: relative L2 error {rel:.3e} > {max_rel_l2:.0e}");
        assert!(abs <= max_abs, "{what}: vector {i}: max abs difference {abs:.3e} > {max_abs:.0e}");
        worst_rel = worst_rel.max(rel);
        worst_abs = worst_abs.max(abs);
    }
    eprintln!("{what}: worst relative L2 error {worst_rel:.2e}, worst max abs difference {worst_abs:.2e} over {} vectors", got.len());
    (worst_rel, worst_abs)
}

/// A small corpus cut from the shared one (first 400 sentences).
pub fn small_corpus(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(data_dir().join("corpus/senteval-sentences.txt")).unwrap();
    let p = dir.join("corpus.txt");
    std::fs::write(&p, text.lines().take(400).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    p
}

/// A fast CPU training run on `corpus` into `out`: batch 4, 12 tokens, a checkpoint every 5
/// steps, no evaluation.
pub fn train_args<'a>(corpus: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--device", "cpu", "--corpus", corpus, "--out", out, "--batch-size", "4", "--max-len", "12",
        "--max-steps", steps, "--eval-every", "5", "--no-eval", "--quiet", "--seed", "7", "--queue-size", "16",
    ]
}

/// The settings of [`train_args`] as a TOML file (what `iftcl train --config` and the
/// `iftcl-train-abort` helper read), with `out`, the default model and `steps` steps.
pub fn train_toml(dir: &Path, corpus: &Path, out: &Path, steps: u64) -> PathBuf {
    train_toml_with_model(dir, &model_dir(), corpus, out, steps)
}

/// [`train_toml`] training `model` instead of the default model.
pub fn train_toml_with_model(dir: &Path, model: &Path, corpus: &Path, out: &Path, steps: u64) -> PathBuf {
    let toml = format!(
        "model = {:?}\ncorpus = {:?}\nout = {:?}\ndevice = \"cpu\"\nbatch_size = 4\nmax_len = 12\nmax_steps = {steps}\n\
         eval_every = 5\nseed = 7\nqueue_size = 16\n",
        model.to_str().unwrap(),
        corpus.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let p = dir.join(format!("{}.toml", out.file_name().unwrap().to_str().unwrap()));
    std::fs::write(&p, toml).unwrap();
    p
}

/// The run of `config` (a [`train_toml`] file) ended abruptly right after step `at` is logged
/// (tests/bin/train_abort.rs: `abort()`, nothing unwound or flushed).
pub fn killed_run(config: &Path, at: u64) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iftcl-train-abort")).arg(at.to_string()).arg(config).env("RUST_LOG", "warn").output().unwrap()
}

/// (step, loss) of every step line of a run's metrics file (`OUT/metrics.jsonl`).
pub fn losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "step")
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

/// A folder in which an `iftcl` run ([`iftcl_in`]) logs every kernel it launches: a
/// `cubecl.toml` with the tests' settings (tests/cubecl.toml) and CubeCL's profiling logger at
/// its `minimal` level (the name of each kernel that runs, no timing) writing to
/// `kernels.log` there. Read the log with [`kernel_log`].
pub fn cubecl_kernel_log(dir: &Path) {
    let settings = std::fs::read_to_string(root().join("tests/cubecl.toml")).unwrap();
    let toml = format!("{settings}\n[profiling]\nlogger = {{ level = \"minimal\", file = \"kernels.log\" }}\n");
    std::fs::write(dir.join("cubecl.toml"), toml).unwrap();
}

/// The kernel log of a run in a [`cubecl_kernel_log`] folder.
pub fn kernel_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("kernels.log")).unwrap_or_else(|e| panic!("{}/kernels.log: {e}", dir.display()))
}

/// A finished run of [`train_args`] (`steps` steps) in `t`: the corpus and the output folder.
pub fn trained(t: &TempDir, steps: &str) -> (PathBuf, PathBuf) {
    let corpus = small_corpus(&t.0);
    let out = t.0.join("out");
    let o = iftcl(&train_args(corpus.to_str().unwrap(), out.to_str().unwrap(), steps), None);
    assert!(o.status.success(), "{}", stderr(&o));
    (corpus, out)
}
