//! Device→host reads the library issues, counted. Each one makes the host wait for the device
//! (a sync point), so `iftcl bench kernels` reports how many a training step or an embedding
//! batch costs. Counted where the library reads a tensor back, not inside burn.

use std::sync::atomic::{AtomicU64, Ordering};

static READS: AtomicU64 = AtomicU64::new(0);

/// Reads of device tensors back to the host since the process started.
pub fn total() -> u64 {
    READS.load(Ordering::Relaxed)
}

/// Notes one read back to the host (called where the library reads a tensor).
pub(crate) fn note() {
    READS.fetch_add(1, Ordering::Relaxed);
}
