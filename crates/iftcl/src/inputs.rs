//! No output over an input: before a command writes a file, it checks that the file is none of
//! the files it reads (the input text, a model folder's files, the STS data, a config), so that
//! `--output` or `--json` naming one of them cannot destroy it.
//!
//! Files are compared by identity (device and inode on Unix), so the same file reached through a
//! symbolic link, a hard link or another spelling of its path is recognised. Nothing is opened:
//! a FIFO given as the output is not read from (which would wait for a writer forever).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Entries of an input folder compared at most (a model or STS folder has a few dozen).
const MAX_ENTRIES: usize = 20_000;

/// Depth of an input folder's sub-folders searched (`1_Pooling/config.json` is at depth 1,
/// `STS12-en-test/STS.gs.x.txt` too).
const MAX_DEPTH: usize = 3;

/// One thing a command reads: how to name it in a message ("the input (in.txt)", "a file of
/// the model folder (--model m)") and its path: a file, or a folder whose files all count.
#[derive(Debug, Clone)]
pub struct Input {
    /// How the message names it.
    pub what: String,
    /// The file or folder.
    pub path: PathBuf,
}

impl Input {
    /// An input named `what` at `path`.
    pub fn new(what: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Input { what: what.into(), path: path.into() }
    }
}

/// Refuses to write `output` (given with `flag`) when it is one of the files of `inputs`.
/// Only an existing regular file can be an input: an output that does not exist yet, a device
/// (`/dev/stdout`, a terminal that is also stdin) or a FIFO passes.
pub fn refuse_input_as_output(flag: &str, output: &Path, inputs: &[Input]) -> Result<()> {
    let Ok(meta) = std::fs::metadata(output) else { return Ok(()) };
    if !meta.is_file() {
        return Ok(());
    }
    let Some(id) = FileId::of(output, &meta) else { return Ok(()) };
    for input in inputs {
        if let Some(found) = find(&input.path, &id) {
            let inside = if found == input.path { String::new() } else { format!(", as {}", found.display()) };
            return Err(Error::InvalidArgument(format!(
                "{flag} {} is {}{inside}: writing it would destroy what it reads; choose another output file",
                output.display(),
                input.what
            )));
        }
    }
    Ok(())
}

/// The path under `root` (itself, or a file in it when it is a folder) that is the file `id`.
fn find(root: &Path, id: &FileId) -> Option<PathBuf> {
    let mut stack = vec![(root.to_path_buf(), 0)];
    let mut seen = 0;
    while let Some((p, depth)) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_file() {
            if FileId::of(&p, &meta).as_ref() == Some(id) {
                return Some(p);
            }
        } else if meta.is_dir() && depth <= MAX_DEPTH {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                seen += 1;
                if seen > MAX_ENTRIES {
                    return None;
                }
                stack.push((e.path(), depth + 1));
            }
        }
    }
    None
}

/// What identifies a file whatever the path to it.
#[derive(Debug, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    dev_ino: (u64, u64),
    #[cfg(not(unix))]
    path: PathBuf,
}

impl FileId {
    #[cfg(unix)]
    fn of(_path: &Path, meta: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(FileId { dev_ino: (meta.dev(), meta.ino()) })
    }

    #[cfg(not(unix))]
    fn of(path: &Path, _meta: &std::fs::Metadata) -> Option<Self> {
        path.canonicalize().ok().map(|path| FileId { path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_file_or_inside_an_input_folder_is_refused() {
        let root = std::env::temp_dir().join(format!("iftcl-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("model/1_Pooling")).unwrap();
        std::fs::write(root.join("model/1_Pooling/config.json"), "{}").unwrap();
        std::fs::write(root.join("in.txt"), "a\n").unwrap();
        let inputs = [Input::new("the input (in.txt)", root.join("in.txt")), Input::new("a file of the model folder (--model model)", root.join("model"))];
        let e = refuse_input_as_output("--output", &root.join("in.txt"), &inputs).unwrap_err().to_string();
        assert!(e.contains("is the input (in.txt): writing it would destroy"), "{e}");
        // Another spelling of the path, inside a folder.
        let other = root.join("model/../model/1_Pooling/./config.json");
        let e = refuse_input_as_output("--json", &other, &inputs).unwrap_err().to_string();
        assert!(e.contains("a file of the model folder") && e.contains("1_Pooling/config.json"), "{e}");
        // A new file, or one that is no input, passes.
        refuse_input_as_output("--output", &root.join("new.jsonl"), &inputs).unwrap();
        std::fs::write(root.join("old.jsonl"), "").unwrap();
        refuse_input_as_output("--output", &root.join("old.jsonl"), &inputs).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("in.txt"), root.join("link")).unwrap();
            assert!(refuse_input_as_output("--output", &root.join("link"), &inputs).is_err(), "through a link");
            std::fs::hard_link(root.join("in.txt"), root.join("hard")).unwrap();
            assert!(refuse_input_as_output("--output", &root.join("hard"), &inputs).is_err(), "through a hard link");
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
