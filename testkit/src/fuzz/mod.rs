//! The bodies of the fuzz targets in `fuzz/fuzz_targets`, one function per target,
//! named after it. Each takes the fuzzer's bytes and panics only when an invariant
//! breaks.

pub mod actix_bodies;
pub mod adapter_steps;
pub mod axum_bodies;
pub mod core_bodies;
pub mod poem_bodies;
pub mod postgres_bodies;
pub mod redis_bodies;
pub mod warp_bodies;
