//! The hippocampus queue: a fixed-capacity FIFO ring buffer, on the device, of embeddings
//! (identical and fraternal twins) already computed in earlier steps, reused as extra
//! negatives. Each entry is stamped with the step that wrote it; entries older than `max_age`
//! steps are ignored since the encoder has drifted since. Entries are detached: no gradient
//! flows into the queue and it costs no forward pass.
//!
//! Each entry also carries the key of the sentence it embeds ([`sentence_key`]). An entry
//! whose sentence is in the current batch is never a negative: it is an earlier embedding of
//! that very sentence (on data smaller than the queue's window, e.g. a handful of notes, every
//! entry is), and counting it as a negative would push each sentence away from itself.

use std::collections::HashSet;

use burn::tensor::{Device, Int, Tensor, TensorData};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Ring buffer of `capacity` vectors of width `dim`.
#[derive(Debug, Clone)]
pub struct Hippocampus {
    capacity: usize,
    dim: usize,
    buffer: Tensor<2>,
    /// Step that wrote each slot; `None` for a slot never written.
    stamps: Vec<Option<u64>>,
    /// [`sentence_key`] of each slot's sentence; [`UNKNOWN_KEY`] for an empty slot or one
    /// restored from a checkpoint written before keys were kept.
    keys: Vec<u64>,
    /// Next slot to write.
    head: usize,
    device: Device,
}

/// A host copy of the queue, for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueState {
    /// Row-major `[capacity, dim]` values.
    pub values: Vec<f32>,
    /// Stamp of each slot (-1 for empty).
    pub stamps: Vec<i64>,
    /// Sentence key of each slot ([`UNKNOWN_KEY`] when not known).
    pub keys: Vec<u64>,
    /// Next slot to write.
    pub head: usize,
}

/// The key of a slot whose sentence is not known: it matches no sentence.
pub const UNKNOWN_KEY: u64 = 0;

/// The queue key of a sentence: the first 8 bytes of the SHA-256 of its text (little-endian),
/// never [`UNKNOWN_KEY`]. The same on every platform, so that checkpoints keep it.
pub fn sentence_key(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let key = u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
    if key == UNKNOWN_KEY { 1 } else { key }
}

impl Hippocampus {
    /// An empty queue. `capacity` may be 0 (no queue).
    pub fn new(capacity: usize, dim: usize, device: &Device) -> Self {
        Hippocampus {
            capacity,
            dim,
            buffer: Tensor::zeros([capacity.max(1), dim], device),
            stamps: vec![None; capacity],
            keys: vec![UNKNOWN_KEY; capacity],
            head: 0,
            device: device.clone(),
        }
    }

    /// Capacity K.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries written so far (at most the capacity).
    pub fn len(&self) -> usize {
        self.stamps.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `rows` (`[n, dim]`, detached here) with the [`sentence_key`] of each row's
    /// sentence, overwriting the oldest entries. When `n` exceeds the capacity only the last
    /// `capacity` rows are kept.
    pub fn push(&mut self, rows: Tensor<2>, keys: &[u64], step: u64) {
        if self.capacity == 0 {
            return;
        }
        let [n, d] = rows.dims();
        assert_eq!(d, self.dim, "queue width {} but rows of width {d}", self.dim);
        assert_eq!(keys.len(), n, "{n} rows but {} keys", keys.len());
        let (rows, keys) = if n > self.capacity { (rows.slice([n - self.capacity..n]), &keys[n - self.capacity..]) } else { (rows, keys) };
        let n = n.min(self.capacity);
        let rows = rows.detach();
        let first = n.min(self.capacity - self.head);
        self.buffer = self.buffer.clone().slice_assign([self.head..self.head + first], rows.clone().slice([0..first]));
        if first < n {
            self.buffer = self.buffer.clone().slice_assign([0..n - first], rows.slice([first..n]));
        }
        for (i, &key) in keys.iter().enumerate() {
            self.stamps[(self.head + i) % self.capacity] = Some(step);
            self.keys[(self.head + i) % self.capacity] = key;
        }
        self.head = (self.head + n) % self.capacity;
    }

    /// Slots usable as negatives at `step` for a batch whose sentences have the keys `batch`:
    /// written, at most `max_age` steps old, and not of a sentence of the batch.
    pub fn fresh_slots(&self, step: u64, max_age: u64, batch: &[u64]) -> Vec<usize> {
        let in_batch: HashSet<u64> = batch.iter().copied().filter(|&k| k != UNKNOWN_KEY).collect();
        (0..self.capacity)
            .filter(|&i| matches!(self.stamps[i], Some(s) if step.saturating_sub(s) <= max_age))
            .filter(|&i| !in_batch.contains(&self.keys[i]))
            .collect()
    }

    /// The entries usable at `step` by a batch of sentences with the keys `batch` (`[k, dim]`,
    /// detached; see [`Self::fresh_slots`]), or `None` when there are none.
    pub fn negatives(&self, step: u64, max_age: u64, batch: &[u64]) -> Option<Tensor<2>> {
        let slots = self.fresh_slots(step, max_age, batch);
        if slots.is_empty() {
            return None;
        }
        if slots.len() == self.capacity {
            return Some(self.buffer.clone());
        }
        let idx: Vec<i64> = slots.iter().map(|&s| s as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [slots.len()]), &self.device);
        Some(self.buffer.clone().select(0, idx))
    }

    /// The whole buffer `[capacity, dim]` and a per-slot validity mask at `step` for a batch
    /// with the keys `batch` (1.0 usable, 0.0 empty, stale or of a sentence of the batch): what
    /// the fused loss kernel reads.
    pub fn buffer_and_mask(&self, step: u64, max_age: u64, batch: &[u64]) -> (Tensor<2>, Vec<f32>) {
        let mut mask = vec![0.0; self.capacity];
        for s in self.fresh_slots(step, max_age, batch) {
            mask[s] = 1.0;
        }
        (self.buffer.clone(), mask)
    }

    /// Host copy for a checkpoint.
    pub fn state(&self) -> Result<QueueState> {
        let values = if self.capacity == 0 {
            Vec::new()
        } else {
            crate::host_reads::note();
            self.buffer.clone().try_into_vec_as::<f32>().map_err(Error::execution)?
        };
        Ok(QueueState {
            values,
            stamps: self.stamps.iter().map(|s| s.map_or(-1, |v| v as i64)).collect(),
            keys: self.keys.clone(),
            head: self.head,
        })
    }

    /// Restores a checkpointed queue; its capacity and width must match.
    pub fn restore(&mut self, state: &QueueState) -> Result<()> {
        if state.keys.len() != state.stamps.len() {
            return Err(Error::InvalidArgument(format!("checkpointed queue holds {} slots but {} sentence keys", state.stamps.len(), state.keys.len())));
        }
        if state.stamps.len() != self.capacity || state.values.len() != self.capacity * self.dim || state.head > self.capacity {
            return Err(Error::InvalidArgument(format!(
                "checkpointed queue holds {} slots of width {} but this run's queue has {} of width {}",
                state.stamps.len(),
                if state.stamps.is_empty() { 0 } else { state.values.len() / state.stamps.len() },
                self.capacity,
                self.dim
            )));
        }
        if self.capacity > 0 {
            self.buffer = Tensor::from_data(TensorData::new(state.values.clone(), [self.capacity, self.dim]), &self.device);
        }
        self.stamps = state.stamps.iter().map(|&s| (s >= 0).then_some(s as u64)).collect();
        self.keys = state.keys.clone();
        self.head = state.head % self.capacity.max(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    fn rows(vals: &[f32]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(vals.to_vec(), [vals.len(), 1]), &dev())
    }

    fn read(t: Tensor<2>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    /// Distinct keys for `n` rows, from `first` on (what the tests below push).
    fn keys(first: u64, n: usize) -> Vec<u64> {
        (first..first + n as u64).collect()
    }

    #[test]
    fn capacity_and_fifo_order() {
        let mut q = Hippocampus::new(4, 1, &dev());
        assert!(q.negatives(0, 10, &[]).is_none());
        q.push(rows(&[1.0, 2.0, 3.0]), &keys(1, 3), 0);
        assert_eq!(q.len(), 3);
        assert_eq!(read(q.negatives(0, 10, &[]).unwrap()), vec![1.0, 2.0, 3.0]);
        q.push(rows(&[4.0, 5.0]), &keys(4, 2), 1);
        assert_eq!(q.len(), 4, "never more than the capacity");
        // 5 overwrote the oldest entry (1), in slot 0.
        assert_eq!(read(q.negatives(1, 10, &[]).unwrap()), vec![5.0, 2.0, 3.0, 4.0]);
        q.push(rows(&[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]), &keys(6, 6), 2);
        // The last 4 of 6 are kept, written from slot 1 (after 5) and wrapping to slot 0.
        assert_eq!(read(q.negatives(2, 10, &[]).unwrap()), vec![11.0, 8.0, 9.0, 10.0], "only the last 4 of 6 kept");
    }

    #[test]
    fn stale_entries_are_ignored() {
        let mut q = Hippocampus::new(6, 1, &dev());
        q.push(rows(&[1.0, 2.0]), &keys(1, 2), 0);
        q.push(rows(&[3.0, 4.0]), &keys(3, 2), 3);
        assert_eq!(read(q.negatives(3, 3, &[]).unwrap()), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(read(q.negatives(4, 3, &[]).unwrap()), vec![3.0, 4.0], "age 4 > max_age 3");
        assert!(q.negatives(10, 3, &[]).is_none());
        let (_, mask) = q.buffer_and_mask(4, 3, &[]);
        assert_eq!(mask, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn no_gradient_flows_into_the_queue() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [2, 1]), &device).require_grad();
        let mut q = Hippocampus::new(4, 1, &device);
        q.push(x.clone() * 3.0, &keys(1, 2), 0);
        let neg = q.negatives(0, 1, &[]).unwrap();
        assert!(!neg.is_require_grad(), "queue entries must be detached");
        // A loss through the queue only: x gets no gradient from it.
        let loss = (neg * x.clone()).sum() ;
        let grads = loss.backward();
        let g = read(x.grad(&grads).unwrap());
        assert_eq!(g, vec![3.0, 6.0], "the gradient is the queue value, not d(queue)/dx too");
    }

    #[test]
    fn state_round_trips() {
        let mut q = Hippocampus::new(3, 2, &dev());
        q.push(Tensor::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), &dev()), &[sentence_key("a"), sentence_key("b")], 5);
        let s = q.state().unwrap();
        let mut r = Hippocampus::new(3, 2, &dev());
        r.restore(&s).unwrap();
        assert_eq!(r.state().unwrap(), s);
        assert_eq!(s.keys, vec![sentence_key("a"), sentence_key("b"), UNKNOWN_KEY]);
        assert!(Hippocampus::new(4, 2, &dev()).restore(&s).is_err());
        let short = QueueState { keys: vec![1], ..s };
        assert!(r.restore(&short).unwrap_err().to_string().contains("3 slots but 1 sentence keys"));
    }

    #[test]
    fn entries_of_the_batch_sentences_are_not_negatives() {
        // Slots 0..4 hold two views each of sentences 10 and 11 (identical twins, then fraternal
        // twins, as a step pushes them), and one view of sentence 12.
        let mut q = Hippocampus::new(6, 1, &dev());
        q.push(rows(&[1.0, 2.0, 3.0, 4.0, 5.0]), &[10, 11, 10, 11, 12], 0);
        // A batch of sentences 11 and 13: the entries of 11 are left out, in both forms.
        assert_eq!(q.fresh_slots(1, 4, &[11, 13]), vec![0, 2, 4]);
        assert_eq!(read(q.negatives(1, 4, &[11, 13]).unwrap()), vec![1.0, 3.0, 5.0]);
        assert_eq!(q.buffer_and_mask(1, 4, &[11, 13]).1, vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        // A batch of exactly the queued sentences (a handful of notes, every step): no negatives.
        assert!(q.negatives(1, 4, &[10, 11, 12]).is_none());
        assert_eq!(q.buffer_and_mask(1, 4, &[12, 11, 10]).1, vec![0.0; 6]);
        // Other sentences: every fresh entry, in slot order (the whole buffer when it is full).
        assert_eq!(read(q.negatives(1, 4, &[20, 21]).unwrap()), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        // A slot of unknown sentence (a checkpoint written before keys) matches no batch.
        let mut state = q.state().unwrap();
        state.keys = vec![UNKNOWN_KEY; 6];
        q.restore(&state).unwrap();
        assert_eq!(q.fresh_slots(1, 4, &[10, 11, 12, UNKNOWN_KEY]), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn sentence_keys_are_fixed_and_tell_texts_apart() {
        // Pinned: keys are saved in checkpoints, so they must not change between versions.
        assert_eq!(sentence_key("My cat sleeps on the sofa."), sentence_key("My cat sleeps on the sofa."));
        assert_ne!(sentence_key("My cat sleeps on the sofa."), sentence_key("My cat sleeps on the sofa"));
        // SHA-256("") starts e3 b0 c4 42 98 fc 1c 14: read little-endian.
        assert_eq!(sentence_key(""), 0x141c_fc98_42c4_b0e3);
    }
}
