//! **Unstable.** The envelope codecs and cookie parser as free functions, for
//! sessionkit's own fuzz targets, benchmarks and tests.
//!
//! Enabled by the `internal` cargo feature. Nothing here is covered by semver: it may
//! change or go away in any release. Applications never need it: the
//! [`SessionMachine`](crate::SessionMachine) signs, verifies, seals and opens cookies
//! itself.

use rand_core::CryptoRng;

use crate::codec::{self, IdKeys, Rejection, SealError, SealKeys};
use crate::id::SessionId;

pub use crate::codec::{Opened, SealedRecord, VerifiedId};

/// Signs `id` with the primary key: the value of a session-id cookie.
pub fn sign_id(keys: &IdKeys, id: &SessionId) -> String {
    codec::sign_id(keys, id)
}

/// Verifies a signed id cookie value.
///
/// # Errors
/// A [`Rejection`] saying why the value is not an authentic id for this binding.
pub fn verify_id(keys: &IdKeys, value: &str) -> Result<VerifiedId, Rejection> {
    codec::verify_id(keys, value)
}

/// Seals a record with the primary key in the current format (a per-cookie message key
/// from a fresh random salt).
///
/// # Errors
/// [`SealError`] when the data cannot be encoded.
pub fn seal<R: CryptoRng + ?Sized>(
    keys: &SealKeys,
    record: &SealedRecord,
    rng: &mut R,
) -> Result<String, SealError> {
    codec::seal(keys, record, rng)
}

/// Seals a record in sealed format 1 (a random nonce under the secret's fixed key), as
/// sessionkit did before format 2, to test and fuzz that such cookies still open.
///
/// # Errors
/// [`SealError`] when the data cannot be encoded.
pub fn seal_v1<R: CryptoRng + ?Sized>(
    keys: &SealKeys,
    record: &SealedRecord,
    rng: &mut R,
) -> Result<String, SealError> {
    codec::seal_v1(keys, record, rng)
}

/// Opens a sealed cookie value of either format.
///
/// # Errors
/// A [`Rejection`] saying why the value is not an authentic record for this binding.
pub fn open(keys: &SealKeys, value: &str) -> Result<Opened, Rejection> {
    codec::open(keys, value)
}

/// The length of the cookie value [`seal`] produces for `json_len` bytes of JSON data.
pub fn sealed_len(json_len: usize) -> usize {
    codec::sealed_len(json_len)
}

/// Every value of the cookie called `name` in the request's `Cookie` headers, as the
/// machine sees them (at most [`MAX_CANDIDATES`](crate::cookies::MAX_CANDIDATES), in
/// order).
pub fn cookie_values<'h, I>(headers: I, name: &str) -> Vec<String>
where
    I: IntoIterator<Item = &'h [u8]>,
{
    crate::cookies::cookie_values(headers, name)
}

/// Every value of the cookie called `name`, read by the `cookie` crate's own parser: the
/// reference [`cookie_values`] must agree with (fuzzed).
pub fn values_by_cookie_crate<'h, I>(headers: I, name: &str) -> Vec<String>
where
    I: IntoIterator<Item = &'h [u8]>,
{
    crate::cookies::values_by_cookie_crate(headers, name)
}
