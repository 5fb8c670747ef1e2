//! The bodies of the fuzz targets, kept apart from the `fuzz_target!` shims so the
//! normal test suite can replay the committed corpus through the same code
//! (`core/tests/fuzz_corpus.rs` includes `core_bodies.rs` by path).

pub mod axum_bodies;
pub mod core_bodies;
pub mod driver_bodies;
pub mod poem_bodies;
pub mod warp_bodies;
