//! Session ids and the store keys derived from them.

use std::fmt;
use std::sync::Arc;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A session id: 256 bits from the caller's CSPRNG.
///
/// An id only ever leaves this crate inside a signed cookie. There is no constructor from
/// a string or bytes: the only ways to get one are [`SessionId::generate`] and verifying
/// a signed cookie, so a client-chosen id can never be adopted by accident. `Debug`
/// shows a short fingerprint, never the id.
#[derive(Clone)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// Draws a fresh id from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        SessionId(bytes)
    }

    /// Rebuilds an id whose authenticity the caller (a codec) has just verified.
    pub(crate) fn from_verified(bytes: [u8; 32]) -> Self {
        SessionId(bytes)
    }

    /// The raw bytes, for the codecs that sign them.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key under which stores keep this session: `SHA-256(id)` in `namespace`.
    pub fn store_key(&self, namespace: &Namespace) -> StoreKey {
        StoreKey {
            namespace: namespace.clone(),
            digest: Sha256::digest(self.0).into(),
        }
    }

    /// A short, non-reversible tag for logs (the first 4 bytes of the store digest).
    pub fn fingerprint(&self) -> Fingerprint {
        let digest: [u8; 32] = Sha256::digest(self.0).into();
        Fingerprint::of_digest(&digest)
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionId {}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.fingerprint())
    }
}

/// The app namespace a store key lives in ([`Namespace::shared`] for shared sessions).
///
/// Valid names are 1 to 64 characters from `A-Z a-z 0-9 . _ -` and do not start with
/// `_`, which is kept for the shared namespace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// The store namespace of sessions declared `shared = true`.
    pub const SHARED_NAME: &'static str = "_shared";

    /// Validates and wraps an application namespace.
    ///
    /// # Errors
    /// [`NameError`] when the name is empty, too long, starts with `_` or has a character
    /// outside `A-Z a-z 0-9 . _ -`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        validate_name(name, 64, true)?;
        if name.starts_with('_') {
            return Err(NameError::Reserved);
        }
        Ok(Namespace(Arc::from(name)))
    }

    /// The namespace used for shared sessions.
    pub fn shared() -> Self {
        Namespace(Arc::from(Self::SHARED_NAME))
    }

    /// The namespace as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({:?})", &*self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a name (namespace, session name) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("the name is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Length of the refused name.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The name has a character outside the allowed set.
    #[error("the name contains {found:?}; allowed are letters, digits, '.', '_' and '-'")]
    BadCharacter {
        /// The first offending character.
        found: char,
    },
    /// The name is reserved for sessionkit.
    #[error("names starting with '_' are reserved")]
    Reserved,
}

pub(crate) fn validate_name(name: &str, max: usize, allow_dot: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong { len: name.len(), max });
    }
    if let Some(found) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || (allow_dot && c == '.')))
    {
        return Err(NameError::BadCharacter { found });
    }
    Ok(())
}

/// What a store sees of a session: `SHA-256(id)`, in an app namespace.
///
/// A dump of a store holds only store keys, which cannot be turned back into ids, so it
/// cannot be replayed as cookies. `Debug` shows the namespace and a fingerprint.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey {
    namespace: Namespace,
    digest: [u8; 32],
}

impl StoreKey {
    /// Rebuilds a store key from its parts, for drivers that read keys back from their
    /// store (listing, cleanup) and for tests.
    pub fn from_digest(namespace: Namespace, digest: [u8; 32]) -> Self {
        StoreKey { namespace, digest }
    }

    /// The app namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The 32-byte digest of the id.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest as 64 lowercase hex characters (the form most stores key by).
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.digest {
            push_hex(&mut out, byte);
        }
        out
    }

    /// A short tag for logs.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_digest(&self.digest)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({}:{})", self.namespace, self.fingerprint())
    }
}

/// Eight hex characters that name a session in logs without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    fn of_digest(digest: &[u8; 32]) -> Self {
        Fingerprint([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(8);
        for byte in self.0 {
            push_hex(&mut out, byte);
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

fn push_hex(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn ids_are_random_and_redacted() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = SessionId::generate(&mut rng);
        let b = SessionId::generate(&mut rng);
        assert_ne!(a, b);
        let shown = format!("{a:?}");
        assert!(shown.starts_with("SessionId(") && shown.len() == "SessionId()".len() + 8);
        let hex_id = StoreKey::from_digest(Namespace::shared(), *a.as_bytes()).to_hex();
        assert!(!shown.contains(&hex_id[..16]));
    }

    #[test]
    fn store_key_is_sha256_of_id() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let id = SessionId::generate(&mut rng);
        let ns = Namespace::new("app").expect("valid");
        let key = id.store_key(&ns);
        let expected: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        assert_eq!(key.digest(), &expected);
        assert_ne!(&key.digest()[..], &id.as_bytes()[..]);
        assert_eq!(key.to_hex().len(), 64);
        assert_eq!(key.fingerprint(), id.fingerprint());
        assert!(!format!("{key:?}").contains(&key.to_hex()));
    }

    #[test]
    fn namespace_rules() {
        assert!(Namespace::new("my-app.v2").is_ok());
        assert_eq!(Namespace::new(""), Err(NameError::Empty));
        assert_eq!(Namespace::new("_x"), Err(NameError::Reserved));
        assert_eq!(Namespace::new("a b"), Err(NameError::BadCharacter { found: ' ' }));
        assert!(matches!(
            Namespace::new(&"a".repeat(65)),
            Err(NameError::TooLong { .. })
        ));
        assert_eq!(Namespace::shared().as_str(), "_shared");
    }
}
