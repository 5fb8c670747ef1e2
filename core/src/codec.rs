//! The two cookie envelopes: the signed session-id cookie and the sealed record cookie.
//!
//! Both are URL-safe base64 (no padding) of a binary envelope that starts with a format
//! version byte and the 4-byte id of the key that made it:
//!
//! ```text
//! signed: version=1 | key id (4) | session id (32) | HMAC-SHA256 tag (32)      → 92 chars
//! sealed: version=1 | key id (4) | nonce (12) | AES-256-GCM(ciphertext | tag 16)
//!         plaintext = created-at ms (u64 BE) | last-seen ms (u64 BE) | JSON object
//! ```
//!
//! Both bind the format version, the key id, the app namespace (absent for shared
//! sessions), the session name and the cookie name, so an envelope made for one cookie
//! cannot be replayed under another name, session or app:
//!
//! - the signed id's MAC key is derived per binding when the session is set up,
//!   `K = HMAC(K_sign, label | namespace | session | cookie)` (length-prefixed fields),
//!   and the per-request MAC covers `version | key id | id` (37 bytes, one SHA-256
//!   block), so verifying a cookie costs two SHA-256 compressions instead of four;
//! - the sealed record's associated data is `label | version | key id | namespace |
//!   session | cookie`, precomputed per key.
//!
//! Nothing is parsed before the tag is verified, and tags are compared in constant time.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::Mac;
use hmac::digest::FixedOutput;
use rand_core::CryptoRng;
use serde_json::{Map, Value};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::id::SessionId;
use crate::keys::{DerivedKeys, KeyId, KeyRing, KeyUse, MacKey};
use crate::time::Timestamp;

/// The current envelope format version.
pub const FORMAT_VERSION: u8 = 1;

const SIGNED_LABEL: &[u8] = b"sessionkit/v1/signed-id";
const SEALED_LABEL: &[u8] = b"sessionkit/v1/sealed-record";
const SIGNED_LEN: usize = 1 + 4 + 32 + 32;
/// Length of a signed id cookie value in characters.
pub const SIGNED_COOKIE_LEN: usize = SIGNED_LEN.div_ceil(3) * 4 - (3 - SIGNED_LEN % 3) % 3;
const SEALED_HEADER: usize = 1 + 4 + 12;
const TAG_LEN: usize = 16;
/// The longest sealed cookie value sessionkit will open, in characters. Anything longer
/// could not have come from a conforming Set-Cookie header.
pub const MAX_SEALED_COOKIE_LEN: usize = 8192;

/// What an envelope is bound to: the app, the named session and the cookie name.
#[derive(Debug, Clone, Copy)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed by nature: the binding is the MAC and AEAD input of this format version; another field is a new FORMAT_VERSION"
)]
pub struct Binding<'a> {
    /// The app namespace, or `None` for a session shared between apps.
    pub namespace: Option<&'a str>,
    /// The session name.
    pub session: &'a str,
    /// The cookie name.
    pub cookie: &'a str,
}

impl Binding<'_> {
    fn feed(&self, mut sink: impl FnMut(&[u8])) {
        let mut field = |bytes: &[u8]| {
            // Names are validated to be short; the length prefix keeps fields apart.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            sink(&len.to_be_bytes());
            sink(bytes);
        };
        match self.namespace {
            Some(ns) => {
                field(b"ns");
                field(ns.as_bytes());
            }
            None => field(b"shared"),
        }
        field(self.session.as_bytes());
        field(self.cookie.as_bytes());
    }

    fn associated_data(&self, version: u8, key_id: [u8; 4]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(SEALED_LABEL.len() + 5 + 64);
        ad.extend_from_slice(SEALED_LABEL);
        ad.push(version);
        ad.extend_from_slice(&key_id);
        self.feed(|bytes| ad.extend_from_slice(bytes));
        ad
    }
}

/// Why a cookie was not accepted. Never shown to the client: a rejected cookie simply
/// means an anonymous request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Not base64 of the right length or shape.
    #[error("malformed cookie value")]
    Malformed,
    /// A format version this build does not understand (older or newer).
    #[error("unsupported cookie format version")]
    UnsupportedVersion,
    /// No key in the ring has the envelope's key id.
    #[error("cookie made with an unknown key")]
    UnknownKey,
    /// The tag did not verify: tampered, truncated, or bound to another name or app.
    #[error("cookie failed authentication")]
    BadTag,
    /// Authentic, but the plaintext is not a valid record (a bug or a foreign writer
    /// holding our key).
    #[error("authenticated cookie holds an invalid record")]
    Corrupt,
}

/// A verified session id and which key verified it.
#[derive(Debug)]
#[non_exhaustive]
pub struct VerifiedId {
    /// The id.
    pub id: SessionId,
    /// Which key of the ring verified it.
    pub key: KeyUse,
}

/// The signing keys of one binding: one MAC key per key of the ring, derived when the
/// session is set up. Wiped on drop.
pub struct IdKeys {
    /// Primary first.
    keys: Vec<(KeyId, MacKey, KeyUse)>,
}

impl IdKeys {
    /// Derives the binding's MAC keys from every key of `ring`.
    pub fn new(ring: &KeyRing, binding: &Binding<'_>) -> Self {
        let derive = |derived: &DerivedKeys| {
            let mut mac = derived.signing.start();
            mac.update(SIGNED_LABEL);
            binding.feed(|bytes| mac.update(bytes));
            let mut key = Zeroizing::new([0u8; 32]);
            mac.finalize_into((&mut *key).into());
            MacKey::new(&key[..])
        };
        let mut keys = vec![(ring.primary().id, derive(ring.primary()), KeyUse::Primary)];
        keys.extend(ring.previous().map(|k| (k.id, derive(k), KeyUse::Previous)));
        IdKeys { keys }
    }

    fn primary(&self) -> &(KeyId, MacKey, KeyUse) {
        &self.keys[0]
    }
}

// The only secrets are `MacKey`s.
impl ZeroizeOnDrop for IdKeys {}

impl std::fmt::Debug for IdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _, _)| id))
            .finish()
    }
}

/// Signs `id` with the primary key.
pub(crate) fn sign_id(keys: &IdKeys, id: &SessionId) -> String {
    let (key_id, mac, _) = keys.primary();
    let mut envelope = [0u8; SIGNED_LEN];
    envelope[0] = FORMAT_VERSION;
    envelope[1..5].copy_from_slice(&key_id.0);
    envelope[5..37].copy_from_slice(id.as_bytes());
    let mut mac = mac.start();
    mac.update(&envelope[..37]);
    envelope[37..].copy_from_slice(&mac.finalize().into_bytes());
    B64.encode(envelope)
}

/// Verifies a signed id cookie value.
///
/// # Errors
/// A [`Rejection`] saying why the value is not an authentic id for this binding.
pub(crate) fn verify_id(keys: &IdKeys, value: &str) -> Result<VerifiedId, Rejection> {
    if value.len() != SIGNED_COOKIE_LEN {
        return Err(Rejection::Malformed);
    }
    let mut envelope = [0u8; SIGNED_LEN];
    match B64.decode_slice(value, &mut envelope) {
        Ok(SIGNED_LEN) => {}
        _ => return Err(Rejection::Malformed),
    }
    if envelope[0] != FORMAT_VERSION {
        return Err(Rejection::UnsupportedVersion);
    }
    let key_id = [envelope[1], envelope[2], envelope[3], envelope[4]];
    let mut seen = false;
    for (id, mac, key_use) in keys.keys.iter().filter(|(id, _, _)| id.0 == key_id) {
        debug_assert_eq!(id.0, key_id);
        seen = true;
        let mut mac = mac.start();
        mac.update(&envelope[..37]);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&envelope[37..]).is_ok() {
            let mut id = [0u8; 32];
            id.copy_from_slice(&envelope[5..37]);
            return Ok(VerifiedId {
                id: SessionId::from_verified(id),
                key: *key_use,
            });
        }
    }
    Err(if seen {
        Rejection::BadTag
    } else {
        Rejection::UnknownKey
    })
}

/// The sealing keys of one binding: the AES-256-GCM key and precomputed associated data
/// for every key of the ring. Wiped on drop.
pub struct SealKeys {
    /// Primary first.
    keys: Vec<(KeyId, Aes256Gcm, Vec<u8>, KeyUse)>,
}

impl SealKeys {
    /// Prepares the binding's sealing keys from every key of `ring`.
    pub fn new(ring: &KeyRing, binding: &Binding<'_>) -> Self {
        let entry = |derived: &DerivedKeys, key_use| {
            let ad = binding.associated_data(FORMAT_VERSION, derived.id.0);
            (derived.id, derived.sealing_v1.clone(), ad, key_use)
        };
        let mut keys = vec![entry(ring.primary(), KeyUse::Primary)];
        keys.extend(ring.previous().map(|k| entry(k, KeyUse::Previous)));
        SealKeys { keys }
    }
}

// The only secrets are `Aes256Gcm`s, checked in `keys`.
impl ZeroizeOnDrop for SealKeys {}

impl std::fmt::Debug for SealKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _, _, _)| id))
            .finish()
    }
}

/// The content of a sealed cookie.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SealedRecord {
    /// When the session was created.
    pub created_at: Timestamp,
    /// When the session was last used (as of sealing).
    pub last_seen: Timestamp,
    /// The session data.
    pub data: Map<String, Value>,
}

impl SealedRecord {
    /// A record to seal.
    pub fn new(created_at: Timestamp, last_seen: Timestamp, data: Map<String, Value>) -> Self {
        SealedRecord {
            created_at,
            last_seen,
            data,
        }
    }
}

/// A record opened from a sealed cookie, and which key opened it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The record.
    pub record: SealedRecord,
    /// Which key of the ring opened it.
    pub key: KeyUse,
}

/// Errors while sealing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The data could not be encoded as JSON.
    #[error("session data could not be encoded as JSON")]
    Encode(#[source] serde_json::Error),
    /// The AEAD refused the input (only possible for inputs of many gigabytes).
    #[error("AES-256-GCM refused to seal the record")]
    Aead,
}

/// Seals a record with the primary key and a fresh random nonce.
///
/// # Errors
/// [`SealError`] when the data cannot be encoded.
pub(crate) fn seal<R: CryptoRng + ?Sized>(
    keys: &SealKeys,
    record: &SealedRecord,
    rng: &mut R,
) -> Result<String, SealError> {
    let (key_id, cipher, ad, _) = &keys.keys[0];
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut buf = Vec::with_capacity(SEALED_HEADER + 16 + 64 + TAG_LEN);
    buf.push(FORMAT_VERSION);
    buf.extend_from_slice(&key_id.0);
    buf.extend_from_slice(&nonce);
    buf.extend_from_slice(&record.created_at.as_millis().to_be_bytes());
    buf.extend_from_slice(&record.last_seen.as_millis().to_be_bytes());
    serde_json::to_writer(&mut buf, &record.data).map_err(SealError::Encode)?;
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(nonce),
            ad,
            buf[SEALED_HEADER..].as_mut().into(),
        )
        .map_err(|_| SealError::Aead)?;
    buf.extend_from_slice(&tag);
    Ok(B64.encode(&buf))
}

/// Opens a sealed cookie value.
///
/// # Errors
/// A [`Rejection`] saying why the value is not an authentic record for this binding.
pub(crate) fn open(keys: &SealKeys, value: &str) -> Result<Opened, Rejection> {
    if value.len() > MAX_SEALED_COOKIE_LEN {
        return Err(Rejection::Malformed);
    }
    let mut buf = B64.decode(value).map_err(|_| Rejection::Malformed)?;
    if buf.len() < SEALED_HEADER + 16 + TAG_LEN {
        return Err(Rejection::Malformed);
    }
    if buf[0] != FORMAT_VERSION {
        return Err(Rejection::UnsupportedVersion);
    }
    let key_id = [buf[1], buf[2], buf[3], buf[4]];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&buf[5..SEALED_HEADER]);
    let nonce = Nonce::<Aes256Gcm>::from(nonce);
    let tag_at = buf.len() - TAG_LEN;
    let mut tag_bytes = [0u8; TAG_LEN];
    tag_bytes.copy_from_slice(&buf[tag_at..]);
    let tag = tag_bytes.into();
    let body = &mut buf[SEALED_HEADER..tag_at];
    let mut seen = false;
    for (_, cipher, ad, key_use) in keys.keys.iter().filter(|(id, _, _, _)| id.0 == key_id) {
        seen = true;
        // AES-GCM checks the tag before decrypting, so a failed attempt leaves the
        // ciphertext as it was for the next candidate key.
        if cipher
            .decrypt_inout_detached(&nonce, ad, (&mut *body).into(), &tag)
            .is_ok()
        {
            let record = parse_plaintext(body).ok_or(Rejection::Corrupt)?;
            return Ok(Opened {
                record,
                key: *key_use,
            });
        }
    }
    Err(if seen {
        Rejection::BadTag
    } else {
        Rejection::UnknownKey
    })
}

fn parse_plaintext(plain: &[u8]) -> Option<SealedRecord> {
    let (created, rest) = plain.split_first_chunk::<8>()?;
    let (seen, json) = rest.split_first_chunk::<8>()?;
    let data: Map<String, Value> = serde_json::from_slice(json).ok()?;
    Some(SealedRecord {
        created_at: Timestamp::from_millis(u64::from_be_bytes(*created)),
        last_seen: Timestamp::from_millis(u64::from_be_bytes(*seen)),
        data,
    })
}

/// The length of the cookie value [`seal`] produces for `json_len` bytes of JSON data.
#[cfg(any(test, feature = "internal"))]
pub(crate) fn sealed_len(json_len: usize) -> usize {
    (SEALED_HEADER + 16 + json_len + TAG_LEN).div_ceil(3) * 4
        - (3 - (SEALED_HEADER + 16 + json_len + TAG_LEN) % 3) % 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Secret;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use serde_json::json;

    fn ring(byte: u8) -> KeyRing {
        KeyRing::new(&Secret::new(vec![byte; 32]).expect("long"))
    }

    fn ids(ring: &KeyRing, binding: &Binding<'_>) -> IdKeys {
        IdKeys::new(ring, binding)
    }

    fn seals(ring: &KeyRing, binding: &Binding<'_>) -> SealKeys {
        SealKeys::new(ring, binding)
    }

    const BIND: Binding<'static> = Binding {
        namespace: Some("app"),
        session: "web",
        cookie: "__Host-web",
    };

    #[test]
    fn signed_round_trip_and_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let keys = ring(1);
        let id = SessionId::generate(&mut rng);
        let value = sign_id(&ids(&keys, &BIND), &id);
        assert_eq!(value.len(), SIGNED_COOKIE_LEN);
        assert_eq!(SIGNED_COOKIE_LEN, 92);
        let verified = verify_id(&ids(&keys, &BIND), &value).expect("verifies");
        assert_eq!(verified.id, id);
        assert_eq!(verified.key, KeyUse::Primary);
    }

    #[test]
    fn signed_rejections_are_typed() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let keys = ring(1);
        let value = sign_id(&ids(&keys, &BIND), &SessionId::generate(&mut rng));
        let other = Binding {
            cookie: "sid",
            ..BIND
        };
        assert_eq!(
            verify_id(&ids(&keys, &other), &value).err(),
            Some(Rejection::BadTag)
        );
        assert_eq!(
            verify_id(&ids(&ring(2), &BIND), &value).err(),
            Some(Rejection::UnknownKey)
        );
        assert_eq!(
            verify_id(&ids(&keys, &BIND), "x").err(),
            Some(Rejection::Malformed)
        );
        let mut bytes = B64.decode(&value).expect("b64");
        bytes[0] = 0;
        assert_eq!(
            verify_id(&ids(&keys, &BIND), &B64.encode(&bytes)).err(),
            Some(Rejection::UnsupportedVersion)
        );
    }

    #[test]
    fn previous_key_verifies_and_says_so() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let old = Secret::new(vec![1u8; 32]).expect("long");
        let new = Secret::new(vec![2u8; 32]).expect("long");
        let id = SessionId::generate(&mut rng);
        let value = sign_id(&ids(&KeyRing::new(&old), &BIND), &id);
        let rotated = KeyRing::new(&new).with_previous(&old);
        let verified = verify_id(&ids(&rotated, &BIND), &value).expect("old key still verifies");
        assert_eq!(verified.key, KeyUse::Previous);
        let record = SealedRecord {
            created_at: Timestamp::from_millis(1),
            last_seen: Timestamp::from_millis(2),
            data: Map::new(),
        };
        let sealed = seal(&seals(&KeyRing::new(&old), &BIND), &record, &mut rng).expect("seals");
        assert_eq!(
            open(&seals(&rotated, &BIND), &sealed).expect("opens").key,
            KeyUse::Previous
        );
    }

    #[test]
    fn sealed_round_trip_and_predicted_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let keys = ring(9);
        let mut data = Map::new();
        data.insert("user".into(), json!("ada"));
        data.insert("n".into(), json!(3));
        let record = SealedRecord {
            created_at: Timestamp::from_millis(1_000),
            last_seen: Timestamp::from_millis(2_000),
            data,
        };
        let value = seal(&seals(&keys, &BIND), &record, &mut rng).expect("seals");
        let json_len = serde_json::to_vec(&record.data).expect("json").len();
        assert_eq!(value.len(), sealed_len(json_len));
        let opened = open(&seals(&keys, &BIND), &value).expect("opens");
        assert_eq!(opened.record, record);
        // Same record sealed twice gives different values (fresh nonce).
        assert_ne!(
            seal(&seals(&keys, &BIND), &record, &mut rng).expect("seals"),
            value
        );
    }

    #[test]
    fn authentic_non_record_is_corrupt() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keys = ring(3);
        // Build a valid envelope by hand whose plaintext is not a JSON object.
        let primary = keys.primary();
        let mut buf = vec![FORMAT_VERSION];
        buf.extend_from_slice(&primary.id.0);
        let mut nonce = [0u8; 12];
        rand_core::Rng::fill_bytes(&mut rng, &mut nonce);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(&[0u8; 16]);
        buf.extend_from_slice(b"[1,2]");
        let ad = BIND.associated_data(FORMAT_VERSION, primary.id.0);
        let tag = primary
            .sealing_v1
            .encrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(nonce),
                &ad,
                buf[SEALED_HEADER..].as_mut().into(),
            )
            .expect("seal");
        buf.extend_from_slice(&tag);
        assert_eq!(
            open(&seals(&keys, &BIND), &B64.encode(&buf)).err(),
            Some(Rejection::Corrupt)
        );
    }

    #[test]
    fn key_holders_are_zeroized_on_drop() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<IdKeys>();
        zeroized_on_drop::<SealKeys>();
    }
}
