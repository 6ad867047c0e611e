//! STS evaluation: data loaders, Spearman correlation, the protocol.

pub mod spearman;
pub mod sts;

pub use sts::{Pair, TEST_TASKS, Task, TaskScore, default_sts_dir, evaluate, load_task};
