//! The bodies of the fuzz targets in `fuzz/fuzz_targets`, one function per target,
//! named after it. Each takes the fuzzer's bytes and panics only when an invariant
//! breaks.
//!
//! [`core_bodies`] needs only sessionkit-core and is always built; every other module
//! sits behind the crate feature of its adapter or driver (`axum`, `warp`, `poem`,
//! `actix`, `redis`, `postgres`), so a core fuzz target compiles none of them.

#[cfg(feature = "actix")]
pub mod actix_bodies;
#[cfg(feature = "adapter-steps")]
pub mod adapter_steps;
#[cfg(feature = "axum")]
pub mod axum_bodies;
pub mod core_bodies;
#[cfg(feature = "poem")]
pub mod poem_bodies;
#[cfg(feature = "postgres")]
pub mod postgres_bodies;
#[cfg(feature = "redis")]
pub mod redis_bodies;
#[cfg(feature = "warp")]
pub mod warp_bodies;
