//! One file per command (or command group).

pub mod bench;
pub mod check_device;
pub mod convert;
pub mod devices;
pub mod embed;
pub mod eval;
pub mod kernels;
pub mod similarity;
pub mod train;
