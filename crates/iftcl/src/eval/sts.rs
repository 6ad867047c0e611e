//! STS evaluation data in SentEval's layout and the evaluation protocol: cosine of the two
//! embeddings against the gold score, Spearman × 100; STS12-16 as one correlation over all
//! subsets of a year concatenated (SentEval's "all" setting).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::spearman::spearman;
use crate::error::{Error, Result};
use crate::similarity::cosine;

/// One scored sentence pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// First sentence.
    pub a: String,
    /// Second sentence.
    pub b: String,
    /// Gold similarity.
    pub score: f64,
}

/// A named evaluation task: its pairs.
#[derive(Debug, Clone)]
pub struct Task {
    /// "STS12", …, "STS-B", "SICK-R", "STS-B-dev".
    pub name: String,
    /// All scored pairs.
    pub pairs: Vec<Pair>,
}

/// The seven test tasks, in report order.
pub const TEST_TASKS: [&str; 7] = ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R"];

/// Where the STS data lives: `$IFTCL_DATA_DIR/sts`, else `../shared/data/sts` when it exists.
pub fn default_sts_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("IFTCL_DATA_DIR") {
        return Some(PathBuf::from(dir).join("sts"));
    }
    let shared = PathBuf::from("../shared/data/sts");
    shared.is_dir().then_some(shared)
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        Error::Input {
            source_name: path.display().to_string(),
            line: upto.iter().filter(|&&b| b == b'\n').count() + 1,
            message: "not valid UTF-8".into(),
        }
    })?;
    // A byte-order mark (what some Windows editors put first) is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect())
}

fn bad_line(path: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::Input { source_name: path.display().to_string(), line, message: message.into() }
}

/// A gold score: a finite number (Rust's parser also takes `nan` and `inf`, which would rank
/// as the lowest or highest score instead of being refused). The message shows the text with
/// its invisible characters escaped.
fn parse_score(path: &Path, line: usize, s: &str) -> Result<f64> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(bad_line(path, line, format!("score {:?} is not a finite number ({v}): a gold score must be one", s.trim()))),
        Err(_) => Err(bad_line(path, line, format!("score {s:?} is not a number"))),
    }
}

/// STS12-16: every `STS.input.<subset>.txt` with its `STS.gs.<subset>.txt`, pairs with an empty
/// gold line skipped, subsets concatenated in name order.
pub fn load_senteval_year(dir: &Path, year: u32) -> Result<Task> {
    let folder = dir.join(format!("STS{year}-en-test"));
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|e| Error::io("read", &folder, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("STS.input.") && n.ends_with(".txt")
        })
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        return Err(Error::Data(format!("{} has no STS.input.*.txt files", folder.display())));
    }
    let mut pairs = Vec::new();
    for input in inputs {
        let name = input.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let gs = folder.join(name.replacen("STS.input.", "STS.gs.", 1));
        let sents = read_lines(&input)?;
        let golds = read_lines(&gs)?;
        if golds.len() != sents.len() {
            return Err(Error::Data(format!(
                "{} has {} lines but its gold file {} has {}: line k of one scores line k of the other, so the counts must agree",
                input.display(),
                sents.len(),
                gs.display(),
                golds.len()
            )));
        }
        for (i, (s, g)) in sents.iter().zip(&golds).enumerate() {
            if g.trim().is_empty() {
                continue;
            }
            let mut parts = s.split('\t');
            let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
                return Err(bad_line(&input, i + 1, "expected two tab-separated sentences"));
            };
            pairs.push(Pair { a: a.to_string(), b: b.to_string(), score: parse_score(&gs, i + 1, g)? });
        }
    }
    scored(Task { name: format!("STS{year}"), pairs }, &folder)
}

/// STS Benchmark `sts-<split>.csv`: tab-separated, score in column 5, sentences in 6 and 7.
pub fn load_stsb(dir: &Path, split: &str) -> Result<Task> {
    let path = dir.join("STSBenchmark").join(format!("sts-{split}.csv"));
    let mut pairs = Vec::new();
    for (i, line) in read_lines(&path)?.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 7 {
            return Err(bad_line(&path, i + 1, format!("expected at least 7 tab-separated columns, found {}", cols.len())));
        }
        pairs.push(Pair { a: cols[5].into(), b: cols[6].into(), score: parse_score(&path, i + 1, cols[4])? });
    }
    let name = if split == "test" { "STS-B".to_string() } else { format!("STS-B-{split}") };
    scored(Task { name, pairs }, &path)
}

/// SICK relatedness `SICK_test_annotated.txt`: a header row, then pair id, sentence A,
/// sentence B, relatedness, entailment label.
pub fn load_sick(dir: &Path) -> Result<Task> {
    let path = dir.join("SICK").join("SICK_test_annotated.txt");
    let mut pairs = Vec::new();
    for (i, line) in read_lines(&path)?.iter().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 {
            return Err(bad_line(&path, i + 1, format!("expected at least 4 tab-separated columns, found {}", cols.len())));
        }
        pairs.push(Pair { a: cols[1].into(), b: cols[2].into(), score: parse_score(&path, i + 1, cols[3])? });
    }
    scored(Task { name: "SICK-R".into(), pairs }, &path)
}

/// Fewest scored pairs a task needs: a rank correlation of fewer is undefined.
pub const MIN_PAIRS: usize = 2;

/// `task`, unless it has too few scored pairs for a correlation (`source` names its file or
/// folder in the error).
fn scored(task: Task, source: &Path) -> Result<Task> {
    if task.pairs.len() < MIN_PAIRS {
        return Err(Error::Data(format!(
            "{}: {} has {} scored pair(s); a correlation needs at least {MIN_PAIRS}",
            task.name,
            source.display(),
            task.pairs.len()
        )));
    }
    Ok(task)
}

/// Loads a task by its report name.
pub fn load_task(dir: &Path, name: &str) -> Result<Task> {
    match name {
        "STS12" => load_senteval_year(dir, 12),
        "STS13" => load_senteval_year(dir, 13),
        "STS14" => load_senteval_year(dir, 14),
        "STS15" => load_senteval_year(dir, 15),
        "STS16" => load_senteval_year(dir, 16),
        "STS-B" => load_stsb(dir, "test"),
        "STS-B-dev" => load_stsb(dir, "dev"),
        "SICK-R" => load_sick(dir),
        other => Err(Error::InvalidArgument(format!("unknown task `{other}`"))),
    }
}

/// One task's result.
#[derive(Debug, Clone, Serialize)]
pub struct TaskScore {
    /// Task name.
    pub name: String,
    /// Scored pairs.
    pub pairs: usize,
    /// Spearman × 100.
    pub spearman: f64,
}

/// Scores tasks with an embedding function. Sentences are de-duplicated across all tasks and
/// embedded once.
pub fn evaluate<F>(tasks: &[Task], mut embed: F) -> Result<Vec<TaskScore>>
where
    F: FnMut(&[&str]) -> Result<Vec<Vec<f32>>>,
{
    for (i, t) in tasks.iter().enumerate() {
        if tasks[..i].iter().any(|u| u.name == t.name) {
            return Err(Error::InvalidArgument(format!("task {} is given more than once: each task is scored once", t.name)));
        }
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut unique: Vec<&str> = Vec::new();
    for t in tasks {
        for p in &t.pairs {
            for s in [p.a.as_str(), p.b.as_str()] {
                index.entry(s).or_insert_with(|| {
                    unique.push(s);
                    unique.len() - 1
                });
            }
        }
    }
    let vectors = embed(&unique)?;
    let mut out = Vec::new();
    for t in tasks {
        let mut pred = Vec::with_capacity(t.pairs.len());
        let mut gold = Vec::with_capacity(t.pairs.len());
        for p in &t.pairs {
            pred.push(cosine(&vectors[index[p.a.as_str()]], &vectors[index[p.b.as_str()]]));
            gold.push(p.score);
        }
        let rho = spearman(&pred, &gold);
        if t.pairs.len() < MIN_PAIRS || !rho.is_finite() {
            return Err(Error::Data(format!(
                "{}: the Spearman correlation of its {} pairs is undefined (fewer than {MIN_PAIRS} pairs, or every gold score or every similarity is the same)",
                t.name,
                t.pairs.len()
            )));
        }
        out.push(TaskScore { name: t.name.clone(), pairs: t.pairs.len(), spearman: 100.0 * rho });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_dedups_and_scores() {
        let task = Task {
            name: "T".into(),
            pairs: vec![
                Pair { a: "x".into(), b: "x".into(), score: 5.0 },
                Pair { a: "x".into(), b: "y".into(), score: 1.0 },
                Pair { a: "x".into(), b: "z".into(), score: 3.0 },
            ],
        };
        let mut calls = 0;
        let scores = evaluate(&[task], |s| {
            calls += 1;
            assert_eq!(s, ["x", "y", "z"]);
            Ok(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]])
        })
        .unwrap();
        assert_eq!(calls, 1);
        assert!((scores[0].spearman - 100.0).abs() < 1e-9);
    }

    #[test]
    fn scores_must_be_finite_numbers_and_a_byte_order_mark_is_skipped() {
        let dir = std::env::temp_dir().join(format!("iftcl-sts-finite-{}", std::process::id()));
        let folder = dir.join("STS12-en-test");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("STS.input.a.txt"), "x\ty\nu\tv\nw\tz\n").unwrap();
        for (gold, says) in [("1\nnan\n3\n", ":2: score \"nan\" is not a finite number"), ("1\n2\n-inf\n", ":3: score \"-inf\" is not a finite number"), ("1\n2\u{200b}\n3\n", ":2: score \"2\\u{200b}\" is not a number")] {
            std::fs::write(folder.join("STS.gs.a.txt"), gold).unwrap();
            let e = load_senteval_year(&dir, 12).unwrap_err().to_string();
            assert!(e.contains("STS.gs.a.txt") && e.contains(says), "{gold:?}: {e}");
        }
        std::fs::write(folder.join("STS.gs.a.txt"), "\u{feff}4.4\n2\n3\n").unwrap();
        assert_eq!(load_senteval_year(&dir, 12).unwrap().pairs[0].score, 4.4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_task_given_twice_is_refused() {
        let pair = |score| Pair { a: "x".into(), b: format!("y{score}"), score };
        let t = Task { name: "STS12".into(), pairs: vec![pair(1.0), pair(2.0)] };
        let e = evaluate(&[t.clone(), t], |s| Ok(s.iter().map(|_| vec![1.0, 0.0]).collect())).unwrap_err().to_string();
        assert!(e.contains("task STS12 is given more than once"), "{e}");
    }

    #[test]
    fn an_undefined_correlation_is_an_error() {
        let pair = |score| Pair { a: "x".into(), b: "y".into(), score };
        let flat = Task { name: "Flat".into(), pairs: vec![pair(1.0), pair(1.0), pair(1.0)] };
        let e = evaluate(&[flat], |s| Ok(s.iter().map(|_| vec![1.0, 0.0]).collect())).unwrap_err().to_string();
        assert!(e.contains("Flat") && e.contains("undefined"), "{e}");
        let one = Task { name: "One".into(), pairs: vec![pair(1.0)] };
        assert!(evaluate(&[one], |s| Ok(s.iter().map(|_| vec![1.0, 0.0]).collect())).is_err());
    }

    #[test]
    fn inputs_and_gold_files_pair_up_line_for_line() {
        let dir = std::env::temp_dir().join(format!("iftcl-sts-{}", std::process::id()));
        let folder = dir.join("STS12-en-test");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("STS.input.a.txt"), "x\ty\nu\tv\n").unwrap();
        std::fs::write(folder.join("STS.gs.a.txt"), "1\n2\n3\n").unwrap();
        let e = load_senteval_year(&dir, 12).unwrap_err().to_string();
        assert!(e.contains("STS.input.a.txt has 2 lines") && e.contains("STS.gs.a.txt has 3"), "{e}");
        std::fs::write(folder.join("STS.input.a.txt"), "").unwrap();
        std::fs::write(folder.join("STS.gs.a.txt"), "").unwrap();
        let e = load_senteval_year(&dir, 12).unwrap_err().to_string();
        assert!(e.contains("STS12") && e.contains("0 scored pair(s)"), "{e}");
        std::fs::write(folder.join("STS.input.a.txt"), "x\ty\nu\tv\n").unwrap();
        std::fs::write(folder.join("STS.gs.a.txt"), "1\n2\n").unwrap();
        assert_eq!(load_senteval_year(&dir, 12).unwrap().pairs.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

}
