//! One training run per output folder: an advisory lock on `OUT/.iftcl-train.lock`, holding
//! the owner's pid, taken before anything in the folder is read or written and released (the
//! file removed) when the run ends.
//!
//! The lock is the operating system's (`flock` on Unix, `LockFileEx` on Windows, through
//! [`std::fs::File::try_lock`]): it dies with its process, so a run that was killed cannot hold
//! a folder forever. Its file stays behind with the dead run's pid; the next run takes the
//! lock over and says so.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the lock file inside the output folder.
pub const LOCK_FILE: &str = ".iftcl-train.lock";

/// Ownership of an output folder, released on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    file: File,
}

impl RunLock {
    /// Takes the folder `dir` (which must exist) for this process. Fails with
    /// [`Error::Locked`], naming the owner, when another run holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io("write into the output folder", dir, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    return Err(Error::Locked {
                        dir: dir.to_path_buf(),
                        holder: if holder.is_empty() { "a run that is starting".into() } else { holder },
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
            // The previous owner removes the file when it lets go: a lock taken on a file that
            // is no longer at `path` guards nothing. Open the new one.
            if !still_at(&file, &path) {
                continue;
            }
            let previous = read_holder(&mut file);
            if !previous.is_empty() {
                tracing::warn!(
                    "{}: the run that held this folder ({previous}) ended without letting go (it was killed or crashed); taking over its lock",
                    dir.display()
                );
            }
            let me = format!("pid {}", std::process::id());
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(me.as_bytes()))
                .map_err(|e| Error::io("write", &path, e))?;
            return Ok(RunLock { path, file });
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove while still holding the lock, so that a waiting opener sees the file gone.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    text.trim().to_string()
}

/// Whether the open `file` is the one at `path` now.
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("iftcl-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = RunLock::acquire(&dir).unwrap();
        let e = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(e.contains("in use by another `iftcl train` run") && e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(!dir.join(LOCK_FILE).exists(), "the lock file is removed on release");
        // A lock file left by a killed run (its lock died with it) is taken over.
        std::fs::write(dir.join(LOCK_FILE), "pid 999999").unwrap();
        let again = RunLock::acquire(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(), format!("pid {}", std::process::id()));
        drop(again);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
