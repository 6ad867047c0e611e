//! One training run per output folder: an advisory lock on `OUT/.iftcl-train.lock`, taken
//! before anything in the folder is read or written and released (the file removed) when the
//! run ends.
//!
//! The lock is the operating system's (`flock` on Unix, `LockFileEx` on Windows, through
//! [`std::fs::File::try_lock`]): it dies with its process, so a run that was killed cannot hold
//! a folder forever. Its file stays behind; the next run takes the lock over and says so.
//!
//! The file is also the run's record of the temporary names it creates in the folder (an
//! [`atomic::Journal`](crate::atomic::Journal)): the owner's pid on the first line, then one
//! `writing NAME` line per staging or backup name that exists while a checkpoint is written.
//! After a kill, those lines name exactly what the killed run left, and nothing else is ever
//! removed. A file of that name that is not such a record (a user's) is refused, untouched.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::atomic::Journal;
use crate::error::{Error, Result};

/// Name of the lock file inside the output folder.
pub const LOCK_FILE: &str = ".iftcl-train.lock";

/// What the lock file of a run that ended without letting go recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Previous {
    /// Its pid, if the file got that far.
    pub pid: Option<u32>,
    /// The temporary names it had created and not yet removed.
    pub writing: Vec<String>,
}

/// Ownership of an output folder, released on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    record: LockRecord,
    previous: Option<Previous>,
}

/// The lock file as a [`Journal`]: writes go through the handle that holds the lock (Windows
/// refuses writes to a locked file through any other).
#[derive(Debug, Clone)]
pub struct LockRecord {
    file: Arc<Mutex<File>>,
    path: PathBuf,
    writing: Arc<Mutex<Vec<String>>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunLock {
    /// Takes the folder `dir` (which must exist) for this process. Fails with
    /// [`Error::Locked`], naming the owner, when another run holds it, and leaves a file of the
    /// lock's name that is not a lock file as it is.
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
                    let holder = read_text(&mut file).lines().next().unwrap_or_default().trim().to_string();
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
            let text = read_text(&mut file);
            let Some(previous) = parse(&text) else {
                let _ = file.unlock();
                return Err(Error::InvalidArgument(format!(
                    "{} is not the lock file of an `iftcl train` run (it holds other text), and a run needs that name: it was left as it is; \
                     move it away or choose another output folder",
                    path.display()
                )));
            };
            if let Some(pid) = previous.pid {
                tracing::warn!(
                    "{}: the run that held this folder (pid {pid}) ended without letting go (it was killed or crashed); taking over its lock",
                    dir.display()
                );
            }
            // The names the killed run recorded stay recorded until they are cleaned.
            let record = LockRecord { file: Arc::new(Mutex::new(file)), path: path.clone(), writing: Arc::new(Mutex::new(previous.writing.clone())) };
            record.save()?;
            let previous = (previous != Previous::default()).then_some(previous);
            return Ok(RunLock { path, record, previous });
        }
    }

    /// What the run that held the folder before, and was killed, recorded.
    pub fn previous(&self) -> Option<&Previous> {
        self.previous.as_ref()
    }

    /// The lock file as the journal of this run's temporary names.
    pub fn record(&self) -> LockRecord {
        self.record.clone()
    }
}

impl LockRecord {
    /// Rewrites the file: this process's pid, then the names being written.
    fn save(&self) -> Result<()> {
        let mut text = format!("pid {}\n", std::process::id());
        for name in guard(&self.writing).iter() {
            text.push_str(&format!("writing {name}\n"));
        }
        let mut file = guard(&self.file);
        file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(text.as_bytes())).map_err(|e| Error::io("write", &self.path, e))
    }
}

impl Journal for LockRecord {
    fn record(&self, names: &[String]) -> Result<()> {
        guard(&self.writing).extend(names.iter().cloned());
        self.save()
    }

    fn forget(&self, names: &[String]) -> Result<()> {
        guard(&self.writing).retain(|n| !names.contains(n));
        self.save()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove while still holding the lock, so that a waiting opener sees the file gone.
        let _ = std::fs::remove_file(&self.path);
        let _ = guard(&self.record.file).unlock();
    }
}

fn read_text(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file.rewind().and_then(|()| file.take(1 << 20).read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The record in a lock file's `text`, or None when the text is not one. An empty file is the
/// lock of a run that was killed as it started (or a fresh file).
fn parse(text: &str) -> Option<Previous> {
    let mut lines = text.lines();
    let Some(first) = lines.next() else { return Some(Previous::default()) };
    let pid = first.strip_prefix("pid ")?.trim().parse::<u32>().ok()?;
    let writing = lines.filter(|l| !l.is_empty()).map(|l| l.strip_prefix("writing ").map(str::to_string)).collect::<Option<Vec<_>>>()?;
    Some(Previous { pid: Some(pid), writing })
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
        first.record().record(&[".last.1.partial".into()]).unwrap();
        drop(first);
        assert!(!dir.join(LOCK_FILE).exists(), "the lock file is removed on release");
        // A lock file left by a killed run (its lock died with it) is taken over, with what it
        // recorded.
        std::fs::write(dir.join(LOCK_FILE), "pid 999999\nwriting .best.999999.partial\n").unwrap();
        let again = RunLock::acquire(&dir).unwrap();
        assert_eq!(again.previous().unwrap(), &Previous { pid: Some(999999), writing: vec![".best.999999.partial".into()] });
        let me = std::process::id();
        assert_eq!(std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(), format!("pid {me}\nwriting .best.999999.partial\n"));
        again.record().forget(&[".best.999999.partial".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(), format!("pid {me}\n"));
        drop(again);
        // A user's file of that name: refused, and left as it was.
        std::fs::write(dir.join(LOCK_FILE), "my notes\n").unwrap();
        let e = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(e.contains("is not the lock file of an `iftcl train` run"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(), "my notes\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
