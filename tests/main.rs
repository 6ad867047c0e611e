//! The end-to-end tests, one binary: one link instead of one per file, and fixtures (the default
//! model loaded on each device, the golden file) shared by every test of the process through
//! `common`. Each file below is a module; `cargo test --release --workspace --test e2e -- NAME`
//! runs the tests whose path contains NAME (`golden::`, `train::a_killed_run`, ...).

mod common;

mod bad_model;
mod cli;
mod families;
mod fused_loss;
mod golden;
mod hub;
mod kernel_counts;
mod loader_props;
mod precision;
mod quickstart;
mod random_weights;
mod robustness;
mod small_tune;
mod sts_figures;
mod train;
