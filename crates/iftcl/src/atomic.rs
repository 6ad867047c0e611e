//! Atomic writes: a file or a folder is written under a temporary name beside its destination
//! and renamed over it once complete, so that the destination holds either the old content or
//! the new, never half of it. A write that fails removes its temporary (a full disk is not left
//! fuller); one cut off by a kill leaves it.
//!
//! - files: [`AtomicFile`] (a writer) and [`write_file`]; the temporary is
//!   `.<name>.<pid>.partial`. Destinations that are not regular files (`/dev/stdout`, a FIFO)
//!   are written in place, and a symbolic link is written through, to its target (also when
//!   the target does not exist yet).
//! - folders: [`write_dir`]; the temporary is `.<name>.<pid>.partial`, and the previous folder
//!   is kept as `.<name>.<pid>.old` during the swap.
//!
//! Temporary names carry the writer's pid and are created exclusively: a write never replaces
//! or removes a file it did not create. What a killed write leaves can be found again only
//! through a [`Journal`] that recorded the names before they were created (the training output
//! folder's lock file is one): [`clean_leftovers`] then removes, or puts back, exactly those.
//! [`remove_pending`] removes the temporaries of the writes still in progress (for a signal
//! handler that is about to end the process).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Suffix of the staging name of an atomic write.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Suffix of the name the previous folder keeps during a folder swap.
pub const OLD_SUFFIX: &str = ".old";

/// The temporaries of the writes in progress in this process (see [`remove_pending`]).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn add_pending(p: &Path) {
    pending().push(p.to_path_buf());
}

fn drop_pending(p: &Path) {
    pending().retain(|q| q != p);
}

/// Removes the temporary files and staging folders of every atomic write still in progress in
/// this process, so that a process ended by a signal leaves none of them behind. Destinations
/// are never touched (a folder swap cut off halfway is put back by [`clean_leftovers`] through
/// its [`Journal`]). Returns the paths removed.
pub fn remove_pending() -> Vec<PathBuf> {
    // The list stays locked while its entries are removed: a folder swap, which holds it too,
    // never renames a staging folder that is being removed.
    let mut pending = pending();
    let removed = pending
        .iter()
        .filter(|p| {
            let removed = if p.is_dir() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
            removed.is_ok()
        })
        .cloned()
        .collect();
    pending.clear();
    removed
}

/// Where a folder write records the names it is about to create, before it creates them, and
/// forgets them once they are gone: after a kill, the names recorded are exactly what the write
/// left behind ([`clean_leftovers`]).
pub trait Journal {
    /// Records `names` (file names in the destination's folder).
    fn record(&self, names: &[String]) -> Result<()>;
    /// Forgets `names`.
    fn forget(&self, names: &[String]) -> Result<()>;
}

/// A journal that records nothing (a write whose leftovers nobody will look for).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn record(&self, _names: &[String]) -> Result<()> {
        Ok(())
    }
    fn forget(&self, _names: &[String]) -> Result<()> {
        Ok(())
    }
}

/// How many symbolic links [`resolve_links`] follows before it calls the chain a loop (the
/// limit Linux applies).
const MAX_LINKS: usize = 40;

/// `path` with every symbolic link in its last component followed, also to a target that
/// does not exist yet (`canonicalize` fails on those): what writing `path` writes.
pub fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).map_err(|e| Error::io("read the link", &p, e))?;
                p = match p.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::io("follow the links of", path, std::io::Error::other(format!("more than {MAX_LINKS} links in a row (a loop of symbolic links?)"))))
}

/// `.<name>.<pid><suffix>`: a temporary name of the process `pid` for `name`.
fn stamped(name: &str, pid: u32, suffix: &str) -> String {
    format!(".{name}.{pid}{suffix}")
}

/// A temporary name beside `dest` that only this process uses.
fn temporary(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(stamped(&name, std::process::id(), suffix))
}

/// The staging name of an atomic write of `dest_name` by the process `pid`.
pub fn partial_name(dest_name: &str, pid: u32) -> String {
    stamped(dest_name, pid, PARTIAL_SUFFIX)
}

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
        let target = resolve_links(dest)?;
        if let Ok(meta) = std::fs::metadata(&target) {
            if meta.is_dir() {
                return Err(Error::io("write", dest, std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a folder")));
            }
            if !meta.is_file() {
                // A device, FIFO or socket: nothing to rename over; write in place.
                let file = std::fs::OpenOptions::new().write(true).open(&target).map_err(|e| Error::io("open", dest, e))?;
                return Ok(AtomicFile { dest: dest.to_path_buf(), tmp: None, file: BufWriter::new(file), committed: false });
            }
        }
        let tmp = temporary(&target, PARTIAL_SUFFIX);
        // create_new: a file of that name that this process did not create is never truncated.
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| Error::io("create", dest, e))?;
        add_pending(&tmp);
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
            drop_pending(tmp);
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
            drop_pending(tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_file(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).map_err(|e| Error::io("write", dest, e))?;
    f.commit()
}

/// Writes the folder `dir` atomically (see [`write_dir_journaled`]); its leftovers after a kill
/// are recorded nowhere.
pub fn write_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    write_dir_journaled(dir, &NoJournal, fill)
}

/// Writes the folder `dir` atomically: `fill` writes its files into an empty staging folder
/// beside it, which then replaces `dir`. When `fill` (or the swap) fails, the staging folder
/// is removed and `dir` is left as it was. The staging and backup names are recorded in
/// `journal` before they are created and forgotten once they are gone.
pub fn write_dir_journaled(dir: &Path, journal: &dyn Journal, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let (tmp, old) = (temporary(dir, PARTIAL_SUFFIX), temporary(dir, OLD_SUFFIX));
    let names: Vec<String> = [&tmp, &old].iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    journal.record(&names)?;
    // create_dir, not create_dir_all: a folder of that name that this write did not create is
    // never filled, nor removed.
    std::fs::create_dir(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    add_pending(&tmp);
    let written = fill(&tmp).and_then(|()| {
        // The swap holds the list of pending writes: a signal handler's [`remove_pending`]
        // waits until the staging folder has its final name (or has not moved at all).
        let mut pending = pending();
        let swapped = replace_dir(&tmp, &old, dir);
        pending.retain(|q| q != &tmp);
        swapped
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    drop_pending(&tmp);
    if written.is_ok() || (!tmp.exists() && !old.exists()) {
        journal.forget(&names)?;
    }
    written
}

/// Moves the finished `tmp` folder to `dir`, replacing an older `dir`: the old one is renamed
/// to `old` first, so at every instant one complete folder exists under one of the two names.
fn replace_dir(tmp: &Path, old: &Path, dir: &Path) -> Result<()> {
    if std::fs::symlink_metadata(old).is_ok() {
        return Err(Error::io("rename the previous folder to", old, std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a file of that name is in the way")));
    }
    let had_old = std::fs::symlink_metadata(dir).is_ok();
    if had_old {
        std::fs::rename(dir, old).map_err(|e| Error::io("rename", dir, e))?;
    }
    if let Err(e) = std::fs::rename(tmp, dir) {
        // Put the previous folder back under its name.
        if had_old {
            let _ = std::fs::rename(old, dir);
        }
        return Err(Error::io("rename", tmp, e));
    }
    if had_old {
        std::fs::remove_dir_all(old).map_err(|e| Error::io("remove", old, e))?;
    }
    Ok(())
}

/// Tidies what interrupted atomic writes left in the folder `parent`, among the `names` a
/// [`Journal`] recorded (never anything else): a staging folder or file is removed; a backup
/// (`.<name>.<pid>.old`) whose `<name>` is missing (a swap cut off halfway) is renamed back to
/// `<name>`, and removed otherwise. Names that are not there are skipped. Returns what was done,
/// one line each, for the log.
pub fn clean_leftovers(parent: &Path, names: &[String]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for name in names {
        // Only the names this module makes, `.<name>.<pid>.partial` and `.<name>.<pid>.old`,
        // directly in `parent`.
        let made_here = name.starts_with('.') && !name.contains(['/', '\\']) && name != "." && name != "..";
        let is_old = name.ends_with(OLD_SUFFIX);
        if !made_here || !(is_old || name.ends_with(PARTIAL_SUFFIX)) {
            continue;
        }
        let path = parent.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if is_old && let Some(dir) = swapped_name(name).map(|base| parent.join(base)) && std::fs::symlink_metadata(&dir).is_err() {
            std::fs::rename(&path, &dir).map_err(|e| Error::io("rename", &path, e))?;
            done.push(format!("restored {} from {} (a swap cut off halfway)", dir.display(), path.display()));
            continue;
        }
        let removed = if meta.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(|e| Error::io("remove", &path, e))?;
        done.push(format!("removed {} (left by an interrupted write)", path.display()));
    }
    Ok(done)
}

/// `<name>` of a backup name `.<name>.<pid>.old`.
fn swapped_name(backup: &str) -> Option<&str> {
    let (base, pid) = backup.strip_prefix('.')?.strip_suffix(OLD_SUFFIX)?.rsplit_once('.')?;
    (!base.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then_some(base)
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

    fn listing(dir: &Path) -> Vec<String> {
        let mut left: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        left
    }

    /// A journal in memory.
    #[derive(Default)]
    struct Recorded(std::cell::RefCell<Vec<String>>);
    impl Journal for Recorded {
        fn record(&self, names: &[String]) -> Result<()> {
            self.0.borrow_mut().extend_from_slice(names);
            Ok(())
        }
        fn forget(&self, names: &[String]) -> Result<()> {
            self.0.borrow_mut().retain(|n| !names.contains(n));
            Ok(())
        }
    }

    #[test]
    fn a_failed_folder_write_leaves_the_old_folder_and_no_staging() {
        let root = scratch("dir");
        let dir = root.join("last");
        let journal = Recorded::default();
        write_dir_journaled(&dir, &journal, |tmp| write_file(&tmp.join("a"), b"old")).unwrap();
        assert!(journal.0.borrow().is_empty(), "a finished write forgets its names");
        let full = std::io::Error::from_raw_os_error(28);
        let e = write_dir_journaled(&dir, &journal, |tmp| {
            std::fs::write(tmp.join("a"), b"new, half written").unwrap();
            Err(Error::io("write", tmp.join("b"), full))
        })
        .unwrap_err();
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"old", "the previous folder is intact");
        assert_eq!(listing(&root), ["last"], "the staging folder was removed");
        assert!(journal.0.borrow().is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn only_recorded_leftovers_are_cleaned_and_a_cut_swap_is_restored() {
        let root = scratch("leftovers");
        // What a kill leaves: a staging folder, a swap cut after `last` was moved aside, a
        // backup beside its restored folder, a file's temporary.
        for d in [".best.77.partial", ".last.77.old", ".kept.77.old", "kept"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join(".metrics.jsonl.77.partial"), b"").unwrap();
        // Names a user gave their own files: never touched, even when recorded by mistake.
        for d in ["photos", "photos.old", "thesis.old", "best.partial", "film.mkv.partial"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let recorded: Vec<String> = [".best.77.partial", ".last.77.old", ".kept.77.old", ".metrics.jsonl.77.partial", ".gone.77.partial", "thesis.old", "film.mkv.partial", "../x.old"]
            .map(String::from)
            .to_vec();
        let done = clean_leftovers(&root, &recorded).unwrap();
        assert_eq!(done.len(), 4, "{done:?}");
        assert!(done.iter().any(|l| l.starts_with(&format!("restored {}", root.join("last").display()))), "{done:?}");
        assert_eq!(listing(&root), ["best.partial", "film.mkv.partial", "kept", "last", "photos", "photos.old", "thesis.old"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_write_never_takes_over_a_name_it_did_not_create() {
        let root = scratch("names");
        let dir = root.join("best");
        // A folder already at the staging name (another process's, or a user's): the write
        // fails and leaves it as it was.
        let staging = root.join(partial_name("best", std::process::id()));
        std::fs::create_dir_all(staging.join("mine")).unwrap();
        let e = write_dir(&dir, |tmp| write_file(&tmp.join("a"), b"x")).unwrap_err().to_string();
        assert!(e.contains("cannot create") && e.contains(".partial"), "{e}");
        assert!(staging.join("mine").is_dir() && !dir.exists());
        std::fs::remove_dir_all(&staging).unwrap();
        // The same for a file's temporary.
        let dest = root.join("out.txt");
        let tmp = root.join(partial_name("out.txt", std::process::id()));
        std::fs::write(&tmp, b"someone's").unwrap();
        assert!(write_file(&dest, b"new").is_err());
        assert_eq!(std::fs::read(&tmp).unwrap(), b"someone's");
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

    #[cfg(unix)]
    #[test]
    fn links_are_written_through_even_to_a_target_that_does_not_exist_yet() {
        let root = scratch("links");
        let link = root.join("link.txt");
        std::os::unix::fs::symlink("sub/target.txt", &link).unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        write_file(&link, b"through").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
        assert_eq!(std::fs::read(root.join("sub/target.txt")).unwrap(), b"through");
        let (a, b) = (root.join("a"), root.join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = write_file(&a, b"x").unwrap_err().to_string();
        assert!(e.contains("a loop of symbolic links"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
