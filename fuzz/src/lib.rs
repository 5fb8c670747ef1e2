//! The bodies of the fuzz targets, kept apart from the `fuzz_target!` shims so the
//! normal test suite can replay the committed corpus through the same code
//! (each crate's `tests/fuzz_corpus.rs` includes its bodies file and `replay.rs` by
//! path).

pub mod adapter_steps;
pub mod axum_bodies;
pub mod core_bodies;
pub mod poem_bodies;
pub mod postgres_bodies;
pub mod redis_bodies;
pub mod replay;
pub mod warp_bodies;
