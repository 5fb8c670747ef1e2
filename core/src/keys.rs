//! Secrets, the key ring and the per-purpose keys derived from it.
//!
//! Every secret goes through HKDF-SHA256 once, when the ring is built, and yields one key
//! per purpose: id signing (HMAC-SHA256), cookie sealing (the HKDF-Expand key that
//! derives one AES-256-GCM key per sealed cookie, see [`codec`](crate::codec)), legacy
//! cookie opening (the AES-256-GCM key of format version 1) and a public key id. The only
//! thing derived per request is the per-cookie message key of a sealed cookie.
//!
//! # Key hygiene
//!
//! Every secret and derived key is wiped from memory when it is dropped: [`Secret`] holds
//! its bytes in [`Zeroizing`], the `RustCrypto` crates are built with their `zeroize`
//! features (AES key schedules, GHASH keys, SHA-256 states inside prepared HMACs), and
//! intermediate key bytes live in [`Zeroizing`] buffers. The types that hold keys
//! implement [`ZeroizeOnDrop`]; a compile-time check below fails the build if a
//! dependency update ever drops the guarantee for one of their parts. Copies the compiler
//! makes on the stack or in registers are out of reach of any library and not covered.

use std::fmt;

use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use hmac::Hmac;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{ZeroizeOnDrop, Zeroizing};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

const HKDF_SALT: &[u8] = b"sessionkit/v1/hkdf-salt";
const INFO_SIGNING: &[u8] = b"sessionkit/v1/id-signing";
const INFO_SEALING: &[u8] = b"sessionkit/v1/cookie-sealing";
const INFO_SEALING_KDF: &[u8] = b"sessionkit/v2/cookie-sealing-kdf";
const INFO_KEY_ID: &[u8] = b"sessionkit/v1/key-id";

/// Secret key material: at least 32 bytes, wiped from memory when dropped, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes.
    ///
    /// # Errors
    /// [`KeyError::SecretTooShort`] when fewer than 32 bytes are given.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort { len: bytes.len() });
        }
        Ok(Secret(bytes))
    }

    /// A fresh random 32-byte secret (for development and tests).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; MIN_SECRET_LEN]);
        rng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a secret has at least 32 bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many distinct byte values the secret holds: a check for placeholder secrets
    /// (`"xxxx..."`, a repeated word) that says nothing usable about the bytes. A random
    /// 32-byte secret has about 30.
    pub fn distinct_bytes(&self) -> usize {
        let mut seen = [false; 256];
        for &byte in self.0.iter() {
            seen[usize::from(byte)] = true;
        }
        seen.iter().filter(|&&s| s).count()
    }
}

// The bytes are in a `Zeroizing` buffer.
impl ZeroizeOnDrop for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// Errors about key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error("the secret is {len} bytes long; at least {MIN_SECRET_LEN} bytes are required")]
    SecretTooShort {
        /// Length of the refused secret.
        len: usize,
    },
}

/// The public identifier of one secret: 4 bytes derived from it with HKDF.
///
/// Every envelope carries the key id of the key that made it, so verification picks the
/// right key without trying them all, and a cookie made with a previous secret is known
/// as such.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub(crate) [u8; 4]);

impl KeyId {
    /// The id's bytes as they appear in envelopes.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyId({:02x}{:02x}{:02x}{:02x})",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

// The guarantee the `ZeroizeOnDrop` markers below rely on, checked at compile time.
// `Aes256Gcm` is `ZeroizeOnDrop` only when its AES key schedule is, and wipes its GHASH
// key through polyval's `Drop`. `Hmac` has no marker of its own: it is two SHA-256 block
// states (the inner and outer padded keys) and a block buffer, each wiped by its own
// `Drop` under the `zeroize` features.
const _: () = {
    const fn zeroized_on_drop<T: ZeroizeOnDrop + ?Sized>() {}
    zeroized_on_drop::<Aes256Gcm>();
    zeroized_on_drop::<aes_gcm::aes::Aes256>();
    zeroized_on_drop::<<Sha256 as hmac::digest::block_api::CoreProxy>::Core>();
    zeroized_on_drop::<hmac::digest::block_api::Buffer<hmac::block_api::HmacCore<Sha256>>>();
    zeroized_on_drop::<Zeroizing<[u8; 32]>>();
};

/// A prepared HMAC-SHA256 key: the keyed inner and outer states, cloned per use so the
/// key schedule runs once. Wiped on drop.
#[derive(Clone)]
pub(crate) struct MacKey(HmacSha256);

impl MacKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        MacKey(<HmacSha256 as hmac::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length"))
    }

    /// A fresh MAC computation under this key.
    pub(crate) fn start(&self) -> HmacSha256 {
        self.0.clone()
    }
}

// Both halves of the HMAC state are SHA-256 cores and the buffer is a block buffer, all
// checked above.
impl ZeroizeOnDrop for MacKey {}

/// The keys derived from one secret. Every field but the public key id is wiped on drop.
pub(crate) struct DerivedKeys {
    pub(crate) id: KeyId,
    /// The id-signing key.
    pub(crate) signing: MacKey,
    /// The HKDF-Expand key that derives a sealed cookie's per-message key (format 2).
    pub(crate) sealing_kdf: MacKey,
    /// The fixed sealing key of format 1, kept to open cookies sealed before an upgrade.
    pub(crate) sealing_v1: Aes256Gcm,
}

// Every secret field is one of the checked types.
impl ZeroizeOnDrop for DerivedKeys {}

impl DerivedKeys {
    fn derive(secret: &Secret) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), &secret.0);
        let mut signing_key = Zeroizing::new([0u8; 32]);
        let mut sealing_key = Zeroizing::new([0u8; 32]);
        let mut kdf_key = Zeroizing::new([0u8; 32]);
        let mut key_id = [0u8; 4];
        // HKDF-SHA256 can expand up to 255 * 32 bytes; 32 and 4 are always valid lengths.
        let expand = |info: &[u8], out: &mut [u8]| {
            hkdf.expand(info, out)
                .expect("HKDF output length is far below its 8160-byte limit");
        };
        expand(INFO_SIGNING, &mut signing_key[..]);
        expand(INFO_SEALING, &mut sealing_key[..]);
        expand(INFO_SEALING_KDF, &mut kdf_key[..]);
        expand(INFO_KEY_ID, &mut key_id);
        DerivedKeys {
            id: KeyId(key_id),
            signing: MacKey::new(&signing_key[..]),
            sealing_kdf: MacKey::new(&kdf_key[..]),
            sealing_v1: Aes256Gcm::new((&*sealing_key).into()),
        }
    }
}

/// Which key of the ring verified an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: a key ring has one primary key and verify-only previous keys"
)]
pub enum KeyUse {
    /// The primary key: nothing to do.
    Primary,
    /// A verify-only previous key: the caller must re-issue the cookie with the primary.
    Previous,
}

/// One primary secret plus any number of verify-only previous secrets.
///
/// New envelopes are always made with the primary. Envelopes made with a previous secret
/// still verify, and say so ([`KeyUse::Previous`]), so the session layer re-issues them
/// with the primary: rotating a secret logs nobody out.
pub struct KeyRing {
    primary: DerivedKeys,
    previous: Vec<DerivedKeys>,
}

impl KeyRing {
    /// A ring with one primary secret.
    pub fn new(primary: &Secret) -> Self {
        KeyRing {
            primary: DerivedKeys::derive(primary),
            previous: Vec::new(),
        }
    }

    /// Adds a verify-only previous secret. A secret equal to the primary is ignored.
    #[must_use]
    pub fn with_previous(mut self, previous: &Secret) -> Self {
        let keys = DerivedKeys::derive(previous);
        if keys.id != self.primary.id && self.previous.iter().all(|k| k.id != keys.id) {
            self.previous.push(keys);
        }
        self
    }

    /// The key id of the primary secret.
    pub fn primary_id(&self) -> KeyId {
        self.primary.id
    }

    /// The key ids of the previous secrets, in the order they were added.
    pub fn previous_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.previous.iter().map(|k| k.id)
    }

    pub(crate) fn primary(&self) -> &DerivedKeys {
        &self.primary
    }

    /// The previous keys. Key ids are 32 bits, so two secrets can share one; the codecs
    /// try every key with a matching id.
    pub(crate) fn previous(&self) -> impl Iterator<Item = &DerivedKeys> {
        self.previous.iter()
    }
}

// Every key of the ring is a `DerivedKeys`.
impl ZeroizeOnDrop for KeyRing {}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", &self.primary.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroized_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn every_key_holder_is_zeroized_on_drop() {
        zeroized_on_drop::<Secret>();
        zeroized_on_drop::<MacKey>();
        zeroized_on_drop::<DerivedKeys>();
        zeroized_on_drop::<KeyRing>();
        zeroized_on_drop::<Aes256Gcm>();
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            Secret::new(vec![7u8; 31]).err(),
            Some(KeyError::SecretTooShort { len: 31 })
        );
        assert!(Secret::new(vec![7u8; 32]).is_ok());
    }

    #[test]
    fn secrets_and_rings_are_redacted() {
        let secret = Secret::new(b"correct horse battery staple 0123456789".to_vec()).expect("long");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("horse"), "{shown}");
        let ring = KeyRing::new(&secret);
        assert!(format!("{ring:?}").starts_with("KeyRing { primary: KeyId("));
    }

    #[test]
    fn key_ids_differ_per_secret_and_rotation_dedups() {
        let a = Secret::new(vec![1u8; 32]).expect("long");
        let b = Secret::new(vec![2u8; 32]).expect("long");
        let ring = KeyRing::new(&b)
            .with_previous(&a)
            .with_previous(&a)
            .with_previous(&b);
        assert_ne!(KeyRing::new(&a).primary_id(), ring.primary_id());
        assert_eq!(ring.previous_ids().count(), 1);
        assert_eq!(
            ring.previous().next().map(|k| k.id),
            Some(KeyRing::new(&a).primary_id())
        );
        // Derivation is deterministic: the same secret gives the same id.
        assert_eq!(KeyRing::new(&a).primary_id(), KeyRing::new(&a).primary_id());
    }
}
