//! The hippocampus queue: a fixed-capacity FIFO ring buffer, on the device, of embeddings
//! (identical and fraternal twins) already computed in earlier steps, reused as extra
//! negatives. Each entry is stamped with the step that wrote it; entries older than `max_age`
//! steps are ignored since the encoder has drifted since. Entries are detached: no gradient
//! flows into the queue and it costs no forward pass.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};

/// Ring buffer of `capacity` vectors of width `dim`.
#[derive(Debug, Clone)]
pub struct Hippocampus {
    capacity: usize,
    dim: usize,
    buffer: Tensor<2>,
    /// Step that wrote each slot; `None` for a slot never written.
    stamps: Vec<Option<u64>>,
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
    /// Next slot to write.
    pub head: usize,
}

impl Hippocampus {
    /// An empty queue. `capacity` may be 0 (no queue).
    pub fn new(capacity: usize, dim: usize, device: &Device) -> Self {
        Hippocampus {
            capacity,
            dim,
            buffer: Tensor::zeros([capacity.max(1), dim], device),
            stamps: vec![None; capacity],
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

    /// Appends `rows` (`[n, dim]`, detached here), overwriting the oldest entries. When `n`
    /// exceeds the capacity only the last `capacity` rows are kept.
    pub fn push(&mut self, rows: Tensor<2>, step: u64) {
        if self.capacity == 0 {
            return;
        }
        let [n, d] = rows.dims();
        assert_eq!(d, self.dim, "queue width {} but rows of width {d}", self.dim);
        let rows = if n > self.capacity { rows.slice([n - self.capacity..n]) } else { rows };
        let n = n.min(self.capacity);
        let rows = rows.detach();
        let first = n.min(self.capacity - self.head);
        self.buffer = self.buffer.clone().slice_assign([self.head..self.head + first], rows.clone().slice([0..first]));
        if first < n {
            self.buffer = self.buffer.clone().slice_assign([0..n - first], rows.slice([first..n]));
        }
        for i in 0..n {
            self.stamps[(self.head + i) % self.capacity] = Some(step);
        }
        self.head = (self.head + n) % self.capacity;
    }

    /// Slots usable at `step`: written, and at most `max_age` steps old.
    pub fn fresh_slots(&self, step: u64, max_age: u64) -> Vec<usize> {
        (0..self.capacity)
            .filter(|&i| matches!(self.stamps[i], Some(s) if step.saturating_sub(s) <= max_age))
            .collect()
    }

    /// The entries usable at `step` (`[k, dim]`, detached), or `None` when there are none.
    pub fn negatives(&self, step: u64, max_age: u64) -> Option<Tensor<2>> {
        let slots = self.fresh_slots(step, max_age);
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

    /// The whole buffer `[capacity, dim]` and a per-slot validity mask at `step` (1.0 usable,
    /// 0.0 empty or stale): what the fused loss kernel reads.
    pub fn buffer_and_mask(&self, step: u64, max_age: u64) -> (Tensor<2>, Vec<f32>) {
        let mut mask = vec![0.0; self.capacity];
        for s in self.fresh_slots(step, max_age) {
            mask[s] = 1.0;
        }
        (self.buffer.clone(), mask)
    }

    /// Host copy for a checkpoint.
    pub fn state(&self) -> Result<QueueState> {
        let values = if self.capacity == 0 {
            Vec::new()
        } else {
            self.buffer.clone().try_into_vec_as::<f32>().map_err(Error::execution)?
        };
        Ok(QueueState {
            values,
            stamps: self.stamps.iter().map(|s| s.map_or(-1, |v| v as i64)).collect(),
            head: self.head,
        })
    }

    /// Restores a checkpointed queue; its capacity and width must match.
    pub fn restore(&mut self, state: &QueueState) -> Result<()> {
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

    #[test]
    fn capacity_and_fifo_order() {
        let mut q = Hippocampus::new(4, 1, &dev());
        assert!(q.negatives(0, 10).is_none());
        q.push(rows(&[1.0, 2.0, 3.0]), 0);
        assert_eq!(q.len(), 3);
        assert_eq!(read(q.negatives(0, 10).unwrap()), vec![1.0, 2.0, 3.0]);
        q.push(rows(&[4.0, 5.0]), 1);
        assert_eq!(q.len(), 4, "never more than the capacity");
        // 5 overwrote the oldest entry (1), in slot 0.
        assert_eq!(read(q.negatives(1, 10).unwrap()), vec![5.0, 2.0, 3.0, 4.0]);
        q.push(rows(&[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]), 2);
        // The last 4 of 6 are kept, written from slot 1 (after 5) and wrapping to slot 0.
        assert_eq!(read(q.negatives(2, 10).unwrap()), vec![11.0, 8.0, 9.0, 10.0], "only the last 4 of 6 kept");
    }

    #[test]
    fn stale_entries_are_ignored() {
        let mut q = Hippocampus::new(6, 1, &dev());
        q.push(rows(&[1.0, 2.0]), 0);
        q.push(rows(&[3.0, 4.0]), 3);
        assert_eq!(read(q.negatives(3, 3).unwrap()), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(read(q.negatives(4, 3).unwrap()), vec![3.0, 4.0], "age 4 > max_age 3");
        assert!(q.negatives(10, 3).is_none());
        let (_, mask) = q.buffer_and_mask(4, 3);
        assert_eq!(mask, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn no_gradient_flows_into_the_queue() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [2, 1]), &device).require_grad();
        let mut q = Hippocampus::new(4, 1, &device);
        q.push(x.clone() * 3.0, 0);
        let neg = q.negatives(0, 1).unwrap();
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
        q.push(Tensor::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), &dev()), 5);
        let s = q.state().unwrap();
        let mut r = Hippocampus::new(3, 2, &dev());
        r.restore(&s).unwrap();
        assert_eq!(r.state().unwrap(), s);
        assert!(Hippocampus::new(4, 2, &dev()).restore(&s).is_err());
    }
}
