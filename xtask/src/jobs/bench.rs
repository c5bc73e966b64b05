//! bench-cache: the measurements (the bench room: bench/mod.rs).

pub use crate::bench::run;
