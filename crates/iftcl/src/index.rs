//! A semantic index: documents (an id and a text) with their embeddings, searched by cosine
//! similarity, kept in one JSON file written atomically.
//!
//! The index records which model its vectors come from (a [`SentenceEncoder::fingerprint`]: a hash
//! of the weights, the pooling and the prompt), so that a caller that loads another model, or tunes
//! this one, knows to re-embed the stored texts ([`SemanticIndex::rebuild`]) rather than compare
//! vectors of two different models.
//!
//! ```no_run
//! use iftcl::{device, DeviceSpec, SentenceEncoder};
//! use iftcl::index::SemanticIndex;
//! # fn main() -> iftcl::Result<()> {
//! let encoder = SentenceEncoder::load("models/all-MiniLM-L6-v2".as_ref(), &device::select(DeviceSpec::Cpu)?.device)?;
//! let mut index = SemanticIndex::new(encoder.fingerprint()?, encoder.dim());
//! let texts = ["The cat sleeps on the sofa.", "Stocks fell sharply on Monday."];
//! for (i, (text, vector)) in texts.iter().zip(encoder.embed(&texts)?).enumerate() {
//!     index.upsert(format!("note-{i}"), text.to_string(), vector)?;
//! }
//! let hits = index.search(&encoder.embed(&["a kitten napping"])?[0], 1)?;
//! assert_eq!(hits[0].id, "note-0");
//! index.save("notes.index.json".as_ref())?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::similarity::cosine;

/// Version of the file layout [`SemanticIndex::save`] writes.
pub const INDEX_FORMAT: u32 = 1;

/// One stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The caller's id (unique in the index).
    pub id: String,
    /// The text that was embedded.
    pub text: String,
    /// Its embedding (the index's `dim` values).
    pub vector: Vec<f32>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The document's id.
    pub id: String,
    /// The document's text.
    pub text: String,
    /// Cosine similarity to the query, in [-1, 1].
    pub score: f32,
}

/// Documents with embeddings from one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticIndex {
    format: u32,
    model: String,
    dim: usize,
    documents: Vec<Document>,
}

impl SemanticIndex {
    /// An empty index for vectors of `dim` values from the model with fingerprint `model`.
    pub fn new(model: String, dim: usize) -> Self {
        SemanticIndex { format: INDEX_FORMAT, model, dim, documents: Vec::new() }
    }

    /// The fingerprint of the model the vectors come from.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Values per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether there is no document.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The documents, in the order they were first added.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    fn check_vector(&self, what: &str, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(Error::InvalidArgument(format!("{what} has {} values, the index holds vectors of {}", vector.len(), self.dim)));
        }
        if let Some(bad) = vector.iter().find(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument(format!("{what} holds {bad}")));
        }
        Ok(())
    }

    /// Adds a document, or replaces the one with the same id (keeping its place). Returns
    /// whether one was replaced. Refuses an empty id and a vector of the wrong size or with a
    /// value that is not finite.
    pub fn upsert(&mut self, id: String, text: String, vector: Vec<f32>) -> Result<bool> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("a document id cannot be empty".into()));
        }
        self.check_vector(&format!("the vector of document `{id}`"), &vector)?;
        match self.documents.iter_mut().find(|d| d.id == id) {
            Some(d) => {
                d.text = text;
                d.vector = vector;
                Ok(true)
            }
            None => {
                self.documents.push(Document { id, text, vector });
                Ok(false)
            }
        }
    }

    /// Removes the documents with these ids; returns how many there were.
    pub fn remove(&mut self, ids: &[String]) -> usize {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let before = self.documents.len();
        self.documents.retain(|d| !ids.contains(d.id.as_str()));
        before - self.documents.len()
    }

    /// Removes every document.
    pub fn clear(&mut self) {
        self.documents.clear();
    }

    /// The `k` documents most similar to `query` (cosine), best first; ties keep insertion
    /// order. Fewer when the index holds fewer.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        if k == 0 {
            return Err(Error::InvalidArgument("k must be at least 1".into()));
        }
        self.check_vector("the query vector", query)?;
        let mut scored: Vec<(usize, f32)> = self.documents.iter().enumerate().map(|(i, d)| (i, cosine(query, &d.vector) as f32)).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(scored
            .into_iter()
            .take(k)
            .map(|(i, score)| {
                let d = &self.documents[i];
                Hit { id: d.id.clone(), text: d.text.clone(), score }
            })
            .collect())
    }

    /// Re-embeds every stored text with `encoder` (whose fingerprint is `model`), replacing the
    /// vectors; the index is unchanged when embedding fails.
    pub fn rebuild(&mut self, encoder: &SentenceEncoder, model: String) -> Result<()> {
        let texts: Vec<&str> = self.documents.iter().map(|d| d.text.as_str()).collect();
        let vectors = encoder.embed(&texts)?;
        for (d, v) in self.documents.iter_mut().zip(vectors) {
            d.vector = v;
        }
        self.model = model;
        self.dim = encoder.dim();
        Ok(())
    }

    /// Writes the index to `path` atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec(self).map_err(|e| Error::Data(format!("cannot serialise the index: {e}")))?;
        crate::atomic::write_file(path, &text)
    }

    /// Reads an index [`Self::save`] wrote; `Ok(None)` when there is no file. Errors name the
    /// file and the field or document that is wrong.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let index: SemanticIndex = crate::json::read_json(path)?;
        let bad = |message: String| Error::Parse { path: PathBuf::from(path), format: "semantic index", message };
        if index.format != INDEX_FORMAT {
            return Err(bad(format!("field `format`: {} is not a layout this version reads ({INDEX_FORMAT})", index.format)));
        }
        let mut seen = HashSet::new();
        for (i, d) in index.documents.iter().enumerate() {
            if d.id.is_empty() || !seen.insert(d.id.as_str()) {
                return Err(bad(format!("`documents[{i}].id`: {:?} is empty or repeated", d.id)));
            }
            index.check_vector(&format!("`documents[{i}].vector`"), &d.vector).map_err(|e| bad(e.to_string()))?;
        }
        Ok(Some(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SemanticIndex {
        let mut ix = SemanticIndex::new("m".into(), 2);
        ix.upsert("a".into(), "east".into(), vec![1.0, 0.0]).unwrap();
        ix.upsert("b".into(), "north".into(), vec![0.0, 2.0]).unwrap();
        ix.upsert("c".into(), "north-east".into(), vec![1.0, 1.0]).unwrap();
        ix
    }

    #[test]
    fn search_ranks_by_cosine_and_takes_k() {
        let ix = index();
        let hits = ix.search(&[0.1, 1.0], 2).unwrap();
        assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!((hits[0].score - 1.0 / 1.01f32.sqrt()).abs() < 1e-6, "{}", hits[0].score);
        assert_eq!(ix.search(&[1.0, 0.0], 10).unwrap().len(), 3);
        assert!(ix.search(&[1.0, 0.0], 0).unwrap_err().to_string().contains("k must be at least 1"));
        assert!(ix.search(&[1.0], 1).unwrap_err().to_string().contains("1 values"));
    }

    #[test]
    fn upsert_replaces_in_place_and_remove_counts() {
        let mut ix = index();
        assert!(ix.upsert("a".into(), "west".into(), vec![-1.0, 0.0]).unwrap());
        assert_eq!(ix.documents()[0].text, "west");
        assert!(ix.upsert("d".into(), "x".into(), vec![f32::NAN, 0.0]).is_err());
        assert!(ix.upsert(String::new(), "x".into(), vec![0.0, 0.0]).is_err());
        assert_eq!(ix.remove(&["a".into(), "zz".into(), "c".into()]), 2);
        assert_eq!(ix.len(), 1);
        ix.clear();
        assert!(ix.is_empty());
    }

    #[test]
    fn saves_atomically_and_refuses_damaged_files_by_name() {
        let dir = std::env::temp_dir().join(format!("iftcl-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notes.index.json");
        assert_eq!(SemanticIndex::load(&path).unwrap(), None);
        let ix = index();
        ix.save(&path).unwrap();
        assert_eq!(SemanticIndex::load(&path).unwrap(), Some(ix));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"id\":\"b\"", "\"id\":\"a\"", 1)).unwrap();
        let e = SemanticIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("notes.index.json") && e.contains("documents[1].id"), "{e}");
        std::fs::write(&path, text.replacen("[0.0,2.0]", "[0.0]", 1)).unwrap();
        let e = SemanticIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("documents[1].vector") && e.contains("1 values"), "{e}");
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let e = SemanticIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("notes.index.json") && e.contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
