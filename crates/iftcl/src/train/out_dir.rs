//! The output folder of a run: created, owned by this run alone ([`RunLock`]), tidied of what
//! interrupted writes left, and claimed: the checkpoints in it must be this run's.

use std::path::{Path, PathBuf};

use super::run_lock::RunLock;
use crate::error::{Error, Result};

/// The checkpoint folders a run writes.
pub const CHECKPOINTS: [&str; 2] = ["best", "last"];

/// An output folder owned by this run until dropped.
#[derive(Debug)]
pub struct OutputFolder {
    dir: PathBuf,
    _lock: RunLock,
}

impl OutputFolder {
    /// Creates `dir` if needed and takes it for this run (an error naming the owner when another
    /// run has it); then removes the `*.partial` staging folders of interrupted writes.
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
        for line in crate::atomic::clean_leftovers(dir)? {
            tracing::warn!("{line}");
        }
        Ok(OutputFolder { dir: dir.to_path_buf(), _lock: lock })
    }

    /// Makes sure that the checkpoints in the folder are this run's: a run resumed from
    /// `OUT/last` owns them; another run's are removed when `overwrite` is set and refused
    /// otherwise, so that no `best/` of an earlier run passes for this one's.
    pub fn claim(&self, resume: Option<&Path>, overwrite: bool) -> Result<()> {
        let last = self.dir.join("last");
        if resume.is_some_and(|r| same_dir(r, &last)) {
            return Ok(());
        }
        let found: Vec<PathBuf> = CHECKPOINTS.iter().map(|n| self.dir.join(n)).filter(|p| p.exists()).collect();
        if found.is_empty() {
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
        if let Some(r) = resume
            && let (Ok(r), Ok(d)) = (r.canonicalize(), self.dir.canonicalize())
            && r.starts_with(&d)
        {
            return Err(Error::InvalidArgument(format!("--overwrite would remove {}, the checkpoint this run resumes from", r.display())));
        }
        for p in &found {
            std::fs::remove_dir_all(p).map_err(|e| Error::io("remove", p, e))?;
        }
        tracing::warn!("{}: removed {names} of the previous run (overwrite)", self.dir.display());
        Ok(())
    }
}

/// Whether two paths name the same existing folder.
fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}
