//! Before a run continues from a checkpoint: the run asked for must be the run the checkpoint
//! belongs to, and the checkpoint's parts (model, optimizer state, queue, loop state, config)
//! must agree with each other. Anything else would continue silently with a different run.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::checkpoint::{CONFIG_FILE, OPTIMIZER_FILE, QUEUE_FILE, Resumed, STATE_FILE};
use super::config::TrainConfig;
use super::data::CorpusIdentity;
use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};

/// Settings a resumed run may change: where and on what it runs, how often it evaluates and
/// logs, and `max_steps` (to extend or shorten the schedule). Every other setting shapes the
/// arithmetic of the steps and stays the checkpoint's.
pub const MAY_CHANGE: [&str; 7] = ["out", "device", "fused_loss", "max_steps", "eval_every", "eval_data", "log_every"];

/// The settings of `asked` that differ from the checkpoint's `saved`, outside [`MAY_CHANGE`],
/// one line each (`lr = 0.001, the checkpoint's 1e-5`). Paths that name the same file agree.
pub fn config_conflicts(saved: &TrainConfig, asked: &TrainConfig) -> Vec<String> {
    let table = |c: &TrainConfig| toml::Table::try_from(c).unwrap_or_default();
    let (saved, asked) = (table(saved), table(asked));
    let keys: BTreeSet<&String> = saved.keys().chain(asked.keys()).collect();
    let show = |v: Option<&toml::Value>| v.map_or("unset".to_string(), |v| v.to_string());
    keys.into_iter()
        .filter(|k| !MAY_CHANGE.contains(&k.as_str()))
        .filter(|k| !same_value(saved.get(*k), asked.get(*k)))
        .map(|k| format!("{} = {}, the checkpoint's {}", k.replace('_', "-"), show(asked.get(k)), show(saved.get(k))))
        .collect()
}

fn same_value(a: Option<&toml::Value>, b: Option<&toml::Value>) -> bool {
    match (a, b) {
        (Some(toml::Value::String(x)), Some(toml::Value::String(y))) if x != y => {
            matches!((Path::new(x).canonicalize(), Path::new(y).canonicalize()), (Ok(p), Ok(q)) if p == q)
        }
        _ => a == b,
    }
}

/// Refuses to continue `dir` as the run `asked` describes when a setting outside
/// [`MAY_CHANGE`] differs from the checkpoint's.
pub fn check_config(dir: &Path, saved: &TrainConfig, asked: &TrainConfig) -> Result<()> {
    let conflicts = config_conflicts(saved, asked);
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(Error::Checkpoint {
        path: dir.join(CONFIG_FILE),
        message: format!(
            "a resumed run keeps its settings, to continue exactly, but these differ: {}. Drop them (only {} may change), or start a new run",
            conflicts.join("; "),
            MAY_CHANGE.map(|k| k.replace('_', "-")).join(", ")
        ),
    })
}

/// Refuses to continue the checkpoint `dir` on a corpus whose bytes differ from the ones it was
/// trained on (`saved`; absent from older checkpoints), unless `allow_change`: then the run
/// says that it is no longer an exact continuation.
pub fn check_corpus(dir: &Path, saved: Option<&CorpusIdentity>, corpus: &Path, now: &CorpusIdentity, allow_change: bool) -> Result<()> {
    match saved {
        Some(saved) if saved != now => {
            if allow_change {
                tracing::warn!("corpus {} changed since {} was written ({now}; it was {saved}): the run continues on the new text, not exactly", corpus.display(), dir.display());
                return Ok(());
            }
            Err(Error::Checkpoint {
                path: dir.join(STATE_FILE),
                message: format!(
                    "the corpus {} changed since this checkpoint was written (now {now}; then {saved}): the steps would read other sentences than the run's. \
                     Restore it, or pass --allow-corpus-change to continue on the new text (not an exact continuation)",
                    corpus.display()
                ),
            })
        }
        Some(_) => Ok(()),
        None => {
            tracing::warn!("{} does not record its corpus (an older checkpoint): that {} is unchanged cannot be checked", dir.display(), corpus.display());
            Ok(())
        }
    }
}

/// Checks that the parts of the checkpoint `dir` agree: the loop state with the config, the
/// queue with the config and the model's width, the optimizer state with the model's
/// parameters (every one, with its shape), and that the queue and optimizer state hold finite
/// numbers only.
pub fn check_parts(dir: &Path, r: &Resumed, model: &SentenceEncoder) -> Result<()> {
    let bad = |file: &str, message: String| Err(Error::Checkpoint { path: dir.join(file), message });
    let (state, config) = (&r.state, &r.config);
    if state.step > state.total_steps {
        return bad(STATE_FILE, format!("step {} is past total_steps {}", state.step, state.total_steps));
    }
    if let Some(m) = config.max_steps.filter(|&m| m != state.total_steps) {
        return bad(STATE_FILE, format!("total_steps {} disagrees with max-steps {m} of {CONFIG_FILE}", state.total_steps));
    }
    let (slots, width) = (config.queue_capacity(), model.dim());
    if state.queue_head >= slots.max(1) {
        return bad(STATE_FILE, format!("queue_head {} is outside the queue's {slots} slots", state.queue_head));
    }
    if r.queue.stamps.len() != slots || r.queue.values.len() != slots * width {
        return bad(
            QUEUE_FILE,
            format!(
                "holds {} values in {} slots, but {CONFIG_FILE} asks for {slots} slots of the model's width {width}",
                r.queue.values.len(),
                r.queue.stamps.len()
            ),
        );
    }
    if r.queue.keys.len() != slots {
        return bad(QUEUE_FILE, format!("holds {} sentence keys for {slots} slots", r.queue.keys.len()));
    }
    if let Some(i) = r.queue.values.iter().position(|v| !v.is_finite()) {
        return bad(QUEUE_FILE, format!("holds {} at position {i} (slot {}): the queue of a run that diverged, or a damaged file", r.queue.values[i], i / width.max(1)));
    }
    if let Some((i, s)) = r.queue.stamps.iter().enumerate().find(|(_, s)| **s < -1 || **s > state.step as i64) {
        return bad(STATE_FILE, format!("queue_stamps[{i}] is {s}: a slot is stamped with the step that filled it (at most step {}), or -1 when empty", state.step));
    }
    check_optimizer(&dir.join(OPTIMIZER_FILE), model)
}

/// Every state tensor of the optimizer file belongs to a parameter of `model` and has its
/// shape, and every parameter has state.
fn check_optimizer(path: &Path, model: &SentenceEncoder) -> Result<()> {
    let bad = |message: String| Err(Error::Checkpoint { path: path.to_path_buf(), message });
    let params = parameter_shapes(model);
    let tensors = burn_pack::Reader::from_file_exact(path)
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("cannot be read ({e})") })?;
    let mut covered = BTreeSet::new();
    for t in &tensors {
        let Some(id) = t.param_id else { continue };
        match params.get(&id) {
            None => return bad(format!("state `{}` belongs to a parameter this model does not have: the optimizer state of another model", t.name)),
            Some(shape) if shape.as_slice() != t.shape.as_slice() => {
                return bad(format!(
                    "state `{}` has shape {:?}, its parameter {:?}: the optimizer state of a model of another shape",
                    t.name,
                    t.shape.as_slice(),
                    shape
                ));
            }
            Some(_) => {
                covered.insert(id);
            }
        }
        let bytes = t.to_bytes().map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("cannot be read ({e})") })?;
        if let Some((i, v)) = non_finite(&bytes, t.dtype) {
            return bad(format!("state `{}` holds {v} at position {i}: the optimizer state of a run that diverged, or a damaged file", t.name));
        }
    }
    if covered.len() != params.len() {
        return bad(format!("holds state for {} of the model's {} parameters (truncated, or another model's)", covered.len(), params.len()));
    }
    Ok(())
}

/// The first value of a tensor's little-endian `bytes` that is not finite, with its position
/// (floating-point dtypes only; other dtypes hold no such values).
fn non_finite(bytes: &[u8], dtype: burn_pack::DType) -> Option<(usize, f64)> {
    let find = |width: usize, value: &dyn Fn(&[u8]) -> f64| bytes.chunks_exact(width).map(value).enumerate().find(|(_, v)| !v.is_finite());
    match dtype {
        burn_pack::DType::F32 => find(4, &|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        burn_pack::DType::F64 => find(8, &|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        _ => None,
    }
}

/// Parameter id -> shape, for every parameter of the encoder.
fn parameter_shapes(model: &SentenceEncoder) -> HashMap<u64, Vec<usize>> {
    struct Shapes(HashMap<u64, Vec<usize>>);
    impl ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.insert(param.id.val(), param.lazy_shape().to_vec());
        }
    }
    let mut shapes = Shapes(HashMap::new());
    model.model.visit(&mut shapes);
    shapes.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settings_that_keep_the_steps_exact_may_change() {
        let saved = TrainConfig { corpus: "c.txt".into(), ..TrainConfig::default() };
        let asked = TrainConfig { out: "elsewhere".into(), device: "cpu".into(), max_steps: Some(9), eval_every: 3, ..saved.clone() };
        assert!(config_conflicts(&saved, &asked).is_empty());
        let asked = TrainConfig { lr: 1e-3, batch_size: 8, queue_size: Some(4), ..saved.clone() };
        let c = config_conflicts(&saved, &asked);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c.iter().any(|l| l.starts_with("lr = 0.001, the checkpoint's 0.00001")), "{c:?}");
        assert!(c.iter().any(|l| l.starts_with("queue-size = 4, the checkpoint's unset")), "{c:?}");
        let e = check_config(Path::new("ck"), &saved, &asked).unwrap_err().to_string();
        assert!(e.contains("ck/train_config.toml") && e.contains("batch-size = 8, the checkpoint's 64"), "{e}");
    }
}
