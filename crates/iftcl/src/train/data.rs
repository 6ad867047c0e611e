//! The training corpus: plain UTF-8 text, one sentence per line, blank lines skipped and counted.
//!
//! The file is streamed once to index the byte offset of every sentence (and to reject a
//! non-UTF-8 line with its number) and to hash it (its [`CorpusIdentity`], which a checkpoint
//! records); batches are then read by seeking, so the corpus is never held in memory, and it
//! must be a regular file (not a pipe). The order of each epoch is a permutation drawn from
//! (seed, epoch): a resumed run finds the same batches from the step number alone.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hash::mix;

/// What a corpus file held: a resumed run continues exactly only on the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusIdentity {
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, in hex.
    pub sha256: String,
}

impl std::fmt::Display for CorpusIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, SHA-256 {}", self.bytes, &self.sha256[..self.sha256.len().min(16)])
    }
}

/// An indexed corpus file.
#[derive(Debug, Clone)]
pub struct Corpus {
    path: PathBuf,
    /// (byte offset, byte length) of each sentence, line ending excluded.
    spans: Vec<(u64, u32)>,
    /// Blank lines skipped.
    pub blank_lines: usize,
    identity: CorpusIdentity,
}

impl Corpus {
    /// Indexes `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "a folder" } else { "not a regular file (a pipe, a terminal or a device)" };
            return Err(Error::Data(format!(
                "corpus {} is {what}: the corpus is read again at every step, by seeking to its sentences, so it must be a file; save the text to one first",
                path.display()
            )));
        }
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut spans = Vec::new();
        let mut blank_lines = 0;
        let mut offset = 0u64;
        let mut buf = Vec::new();
        let mut line = 0usize;
        let mut hash = Sha256::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::io("read", path, e))?;
            if n == 0 {
                break;
            }
            hash.update(&buf);
            line += 1;
            let mut content = buf.strip_suffix(b"\n").unwrap_or(&buf);
            content = content.strip_suffix(b"\r").unwrap_or(content);
            let text = std::str::from_utf8(content).map_err(|e| Error::Input {
                source_name: path.display().to_string(),
                line,
                message: format!("not valid UTF-8 (byte {} of the line); the corpus must be UTF-8 text", e.valid_up_to() + 1),
            })?;
            if text.trim().is_empty() {
                blank_lines += 1;
            } else {
                let len = u32::try_from(content.len()).map_err(|_| Error::Input {
                    source_name: path.display().to_string(),
                    line,
                    message: "line longer than 4 GiB".into(),
                })?;
                spans.push((offset, len));
            }
            offset += n as u64;
        }
        if spans.is_empty() {
            return Err(Error::Data(format!(
                "corpus {} has no sentences ({line} lines, {blank_lines} blank): one sentence per line is expected",
                path.display()
            )));
        }
        let identity = CorpusIdentity { bytes: offset, sha256: hash.finalize().iter().map(|b| format!("{b:02x}")).collect() };
        Ok(Corpus { path: path.to_path_buf(), spans, blank_lines, identity })
    }

    /// The size and hash of the file as it was indexed.
    pub fn identity(&self) -> &CorpusIdentity {
        &self.identity
    }

    /// Number of sentences.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Always false: an empty corpus is refused by [`Corpus::open`].
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The corpus file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sentences at the given indices.
    pub fn read(&self, indices: &[usize]) -> Result<Vec<String>> {
        let mut file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        indices
            .iter()
            .map(|&i| {
                let (off, len) = self.spans[i];
                file.seek(SeekFrom::Start(off)).map_err(|e| Error::io("seek", &self.path, e))?;
                let mut buf = vec![0; len as usize];
                file.read_exact(&mut buf).map_err(|e| Error::io("read", &self.path, e))?;
                String::from_utf8(buf).map_err(|_| Error::Data(format!("{} changed while training", self.path.display())))
            })
            .collect()
    }

    /// Sentence order of `epoch`.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, epoch)));
        order
    }

    /// Full batches per epoch (the incomplete last batch is dropped).
    pub fn batches_per_epoch(&self, batch_size: usize) -> usize {
        self.len() / batch_size.max(1)
    }

    /// Indices of the `batch`-th batch of `epoch`.
    pub fn batch_indices(&self, seed: u64, epoch: u64, batch: usize, batch_size: usize) -> Vec<usize> {
        self.epoch_order(seed, epoch)[batch * batch_size..(batch + 1) * batch_size].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("iftcl-corpus-{name}-{}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn blank_lines_are_skipped_and_counted() {
        let p = write("blank", b"one\n\n  \ntwo\r\nthree");
        let c = Corpus::open(&p).unwrap();
        assert_eq!((c.len(), c.blank_lines), (3, 2));
        assert_eq!(c.read(&[2, 0, 1]).unwrap(), vec!["three", "one", "two"]);
    }

    #[test]
    fn bad_corpora_are_refused_with_the_line() {
        let e = Corpus::open(&write("empty", b"")).unwrap_err().to_string();
        assert!(e.contains("has no sentences"), "{e}");
        let e = Corpus::open(&write("blanks", b"\n\n \n")).unwrap_err().to_string();
        assert!(e.contains("3 blank"), "{e}");
        let e = Corpus::open(&write("utf8", b"ok\nstill ok\nbad \xff\n")).unwrap_err().to_string();
        assert!(e.contains(":3: not valid UTF-8"), "{e}");
        assert!(Corpus::open(Path::new("/nonexistent/corpus.txt")).unwrap_err().to_string().contains("/nonexistent/corpus.txt"));
        let e = Corpus::open(&std::env::temp_dir()).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
    }

    #[test]
    fn the_identity_is_the_size_and_hash_of_the_bytes() {
        let c = Corpus::open(&write("identity", b"abc\n")).unwrap();
        // printf 'abc\n' | sha256sum
        assert_eq!(c.identity(), &CorpusIdentity { bytes: 4, sha256: "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb".into() });
        assert_ne!(Corpus::open(&write("identity2", b"abd\n")).unwrap().identity(), c.identity());
    }

    #[test]
    fn epochs_are_seeded_permutations() {
        let text: String = (0..50).map(|i| format!("s{i}\n")).collect();
        let c = Corpus::open(&write("perm", text.as_bytes())).unwrap();
        let a = c.epoch_order(7, 0);
        assert_eq!(a, c.epoch_order(7, 0));
        assert_ne!(a, c.epoch_order(7, 1));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_eq!(c.batches_per_epoch(16), 3);
        assert_eq!(c.batch_indices(7, 0, 1, 16), a[16..32].to_vec());
    }
}
