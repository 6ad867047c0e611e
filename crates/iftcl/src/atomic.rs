//! Atomic writes: a file or a folder is written under a temporary name beside its destination
//! and renamed over it once complete, so that the destination holds either the old content or
//! the new, never half of it. A write that fails removes its temporary (a full disk is not left
//! fuller); one cut off by a kill leaves it, and [`clean_leftovers`] removes it later.
//!
//! - files: [`AtomicFile`] (a writer) and [`write_file`]; the temporary is
//!   `.<name>.<pid>.partial`. Destinations that are not regular files (`/dev/stdout`, a FIFO)
//!   are written in place, and a symbolic link is written through, to its target.
//! - folders: [`write_dir`]; the temporary is `<name>.partial`, and the previous folder is
//!   kept as `<name>.old` during the swap.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Suffix of the staging name of an atomic write.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A file being written atomically: its bytes go to a temporary beside the destination, which
/// [`AtomicFile::commit`] renames over it. Dropped without a commit, the temporary is removed
/// and the destination is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    /// The temporary file, or None when the destination is written in place.
    tmp: Option<PathBuf>,
    file: BufWriter<File>,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing `dest`. Fails at once when its folder does not exist or cannot be
    /// written, so a caller can check an output path before doing the work that fills it.
    pub fn create(dest: &Path) -> Result<Self> {
        // Write through a symbolic link to its target rather than replacing the link.
        let target = std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf());
        if let Ok(meta) = std::fs::metadata(&target) {
            if meta.is_dir() {
                return Err(Error::io("write", dest, std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a folder")));
            }
            if !meta.is_file() {
                // A device, FIFO or socket: nothing to rename over; write in place.
                let file = File::create(&target).map_err(|e| Error::io("create", dest, e))?;
                return Ok(AtomicFile { dest: dest.to_path_buf(), tmp: None, file: BufWriter::new(file), committed: false });
            }
        }
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.{}{PARTIAL_SUFFIX}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io("create", dest, e))?;
        Ok(AtomicFile { dest: target, tmp: Some(tmp), file: BufWriter::with_capacity(1 << 20, file), committed: false })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flushes the bytes and renames the temporary over the destination.
    pub fn commit(mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::io("write", &self.dest, e))?;
        if let Some(tmp) = &self.tmp {
            std::fs::rename(tmp, &self.dest).map_err(|e| Error::io("rename", tmp, e))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let (false, Some(tmp)) = (self.committed, &self.tmp) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_file(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).map_err(|e| Error::io("write", dest, e))?;
    f.commit()
}

/// `<dir>.partial`, the staging folder of an atomic folder write.
pub fn partial_path(dir: &Path) -> PathBuf {
    sibling(dir, PARTIAL_SUFFIX)
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Writes the folder `dir` atomically: `fill` writes its files into an empty `<dir>.partial`,
/// which then replaces `dir`. When `fill` (or the swap) fails, the staging folder is removed
/// and `dir` is left as it was.
pub fn write_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = partial_path(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let written = fill(&tmp).and_then(|()| replace_dir(&tmp, dir));
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

/// Moves the finished `tmp` folder to `dir`, replacing an older `dir`: the old one is renamed
/// aside first, so at every instant one complete folder exists under one of the two names.
fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let old = sibling(dir, ".old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io("rename", dir, e))?;
    }
    if let Err(e) = std::fs::rename(tmp, dir) {
        // Put the previous folder back under its name.
        let _ = std::fs::rename(&old, dir);
        return Err(Error::io("rename", tmp, e));
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    Ok(())
}

/// Tidies what interrupted atomic writes left in the folder `parent`: a `<name>.old` whose
/// `<name>` is missing (a swap cut off halfway) is renamed back to `<name>`; every other
/// `*.old` folder and every `*.partial` file or folder is removed. Returns what was done, one
/// line each, for the log.
pub fn clean_leftovers(parent: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let entries = std::fs::read_dir(parent).map_err(|e| Error::io("read", parent, e))?;
    let mut names: Vec<String> = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let path = parent.join(&name);
        if let Some(base) = name.strip_suffix(".old").filter(|_| path.is_dir()) {
            let dir = parent.join(base);
            if dir.exists() {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io("remove", &path, e))?;
                done.push(format!("removed {} (left by an interrupted write)", path.display()));
            } else {
                std::fs::rename(&path, &dir).map_err(|e| Error::io("rename", &path, e))?;
                done.push(format!("restored {} from {} (an interrupted write)", dir.display(), path.display()));
            }
        } else if name.ends_with(PARTIAL_SUFFIX) {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(|e| Error::io("remove", &path, e))?;
            done.push(format!("removed {} (left by an interrupted write)", path.display()));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("iftcl-atomic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn a_failed_folder_write_leaves_the_old_folder_and_no_staging() {
        let root = scratch("dir");
        let dir = root.join("last");
        write_dir(&dir, |tmp| write_file(&tmp.join("a"), b"old")).unwrap();
        let full = std::io::Error::from_raw_os_error(28);
        let e = write_dir(&dir, |tmp| {
            std::fs::write(tmp.join("a"), b"new, half written").unwrap();
            Err(Error::io("write", tmp.join("b"), full))
        })
        .unwrap_err();
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"old", "the previous folder is intact");
        assert!(!partial_path(&dir).exists(), "the staging folder was removed");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn leftovers_are_cleaned_and_a_cut_swap_is_restored() {
        let root = scratch("leftovers");
        for d in ["best.partial", "last.old", "kept.old", "kept"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join(".x.json.7.partial"), b"").unwrap();
        std::fs::write(root.join("metrics.jsonl"), b"").unwrap();
        let done = clean_leftovers(&root).unwrap();
        assert_eq!(done.len(), 4, "{done:?}");
        let mut left: Vec<String> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["kept", "last", "metrics.jsonl"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_uncommitted_file_leaves_the_destination_untouched() {
        let root = scratch("file");
        let dest = root.join("out.txt");
        std::fs::write(&dest, b"before").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"after").unwrap();
        }
        assert_eq!(std::fs::read(&dest).unwrap(), b"before");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1, "no temporary is left");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"after").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"after");
        let e = AtomicFile::create(&root.join("no/such/folder/x")).unwrap_err().to_string();
        assert!(e.contains("no/such/folder/x"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
