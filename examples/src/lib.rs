//! Examples for sessionkit: the demo apps (binaries `demo-axum`, `demo-warp`,
//! `demo-poem`, `demo-actix`) and [`file_driver`], a custom storage driver written the way a third
//! party would write one, against the public API only.

pub mod demo;
pub mod file_driver;

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
