//! The output folder of a run: created, owned by this run alone ([`RunLock`]), tidied of what
//! a killed run left (only the names that run recorded), kept apart from the run's inputs, and
//! claimed: the checkpoints in it must be this run's.
//!
//! A run writes these names in the folder and no others: `best/` and `last/` (each replaced
//! by an atomic swap through `.best.PID.partial`/`.best.PID.old` and the same for `last`,
//! recorded in the lock file while they exist), `metrics.jsonl` (through
//! `.metrics.jsonl.PID.partial`), `curves.svg` and the lock file `.iftcl-train.lock`.

use std::path::{Path, PathBuf};

use super::checkpoint::{CONFIG_FILE, STATE_FILE};
use super::run_lock::{LOCK_FILE, LockRecord, RunLock};
use crate::atomic::Journal as _;
use crate::error::{Error, Result};

/// The checkpoint folders a run writes.
pub const CHECKPOINTS: [&str; 2] = ["best", "last"];

/// The files a run writes beside its checkpoints.
pub const RUN_FILES: [&str; 3] = ["metrics.jsonl", "curves.svg", LOCK_FILE];

/// An output folder owned by this run until dropped.
#[derive(Debug)]
pub struct OutputFolder {
    dir: PathBuf,
    lock: RunLock,
}

impl OutputFolder {
    /// Creates `dir` if needed and takes it for this run (an error naming the owner when another
    /// run has it); then removes (or puts back) what a killed run recorded as its temporaries.
    pub fn open(dir: &Path) -> Result<Self> {
        if dir.is_file() {
            return Err(Error::NotAFolder {
                what: "output folder".into(),
                path: dir.to_path_buf(),
                hint: "a run writes best/, last/, metrics.jsonl and curves.svg into a folder".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create the output folder", dir, e))?;
        let lock = RunLock::acquire(dir)?;
        if let Some(previous) = lock.previous() {
            let mut names = previous.writing.clone();
            if let Some(pid) = previous.pid {
                // metrics.jsonl is rewritten through a temporary named after the writer's pid.
                names.push(crate::atomic::partial_name(RUN_FILES[0], pid));
            }
            for line in crate::atomic::clean_leftovers(dir, &names)? {
                tracing::warn!("{line}");
            }
            lock.record().forget(&previous.writing)?;
        }
        Ok(OutputFolder { dir: dir.to_path_buf(), lock })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal this run's checkpoint writes record their temporary names in.
    pub fn journal(&self) -> LockRecord {
        self.lock.record()
    }

    /// Refuses an input of the run (`(flag, path)`: the start model, the corpus, the STS data,
    /// the checkpoint resumed from) that is, or lies inside, a name the run writes: the run
    /// would replace what it reads. The checkpoint a run resumes from, `OUT/last`, is its own
    /// and read in full before anything is written.
    pub fn check_inputs(&self, inputs: &[(&str, &Path)], resume: Option<&Path>) -> Result<()> {
        let Ok(out) = self.dir.canonicalize() else { return Ok(()) };
        let last = out.join("last");
        for (flag, input) in inputs {
            // An input that does not exist is reported by whatever reads it.
            let Ok(real) = input.canonicalize() else { continue };
            if *flag == "--resume" && resume.is_some() && real == last {
                continue;
            }
            let written = CHECKPOINTS.iter().chain(RUN_FILES.iter()).map(|name| out.join(name));
            if let Some(w) = written.into_iter().find(|w| real.starts_with(w)) {
                let which = if real == w { "is" } else { "lies inside" };
                return Err(Error::InvalidArgument(format!(
                    "{flag} {} {which} {}, which this run writes into its output folder: it would replace what it reads. \
                     Copy it elsewhere first, or choose another --out",
                    input.display(),
                    w.display()
                )));
            }
        }
        Ok(())
    }

    /// Makes sure that the checkpoints in the folder are this run's: a run resumed from
    /// `OUT/last` owns them; another run's are refused unless `overwrite`, and then stay until
    /// this run's own replace them (never removed first), so that no `best/` of an earlier run
    /// passes for this one's and a run that fails loses nothing. A `best` or `last` that is not
    /// a checkpoint of `iftcl train` is refused either way.
    pub fn claim(&self, resume: Option<&Path>, overwrite: bool) -> Result<()> {
        let found: Vec<PathBuf> = CHECKPOINTS.iter().map(|n| self.dir.join(n)).filter(|p| std::fs::symlink_metadata(p).is_ok()).collect();
        if let Some(p) = found.iter().find(|p| !is_checkpoint(p)) {
            return Err(Error::InvalidArgument(format!(
                "{} is not a checkpoint of `iftcl train` (no {STATE_FILE} and {CONFIG_FILE} in it), and a run writes its checkpoints under that name: \
                 it was left as it is; move it away or choose another output folder",
                p.display()
            )));
        }
        let last = self.dir.join("last");
        if found.is_empty() || resume.is_some_and(|r| same_dir(r, &last)) {
            return Ok(());
        }
        let names = found.iter().map(|p| format!("{}/", p.file_name().unwrap_or_default().to_string_lossy())).collect::<Vec<_>>().join(" and ");
        if !overwrite {
            return Err(Error::InvalidArgument(format!(
                "{} already holds {names} of another run; a new run there would be mixed up with it. Choose another output folder, \
                 continue that run (--resume {}), or replace it (--overwrite)",
                self.dir.display(),
                last.display()
            )));
        }
        tracing::warn!("{}: {names} of the previous run are replaced when this run writes its own (--overwrite)", self.dir.display());
        Ok(())
    }
}

/// Whether `dir` is a checkpoint folder written by a run (model-only `best/` included).
fn is_checkpoint(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file() && dir.join(CONFIG_FILE).is_file()
}

/// Whether two paths name the same existing folder.
fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}
