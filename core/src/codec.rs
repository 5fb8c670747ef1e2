//! The two cookie envelopes: the signed session-id cookie and the sealed record cookie.
//!
//! Both are URL-safe base64 (no padding) of a binary envelope that starts with a format
//! version byte and the 4-byte id of the key that made it:
//!
//! ```text
//! signed:    version=1 | key id (4) | session id (32) | HMAC-SHA256 tag (32)     → 92 chars
//! sealed:    version=2 | key id (4) | salt (24) | AES-256-GCM(ciphertext | tag 16)
//!            message key = HKDF-Expand(K_seal, "sessionkit/v2/message-key" | salt, 32),
//!            nonce = 12 zero bytes (every message key seals exactly one record)
//! sealed v1: version=1 | key id (4) | nonce (12) | AES-256-GCM(ciphertext | tag 16)
//!            under one fixed key per secret; opened, never made any more
//!            plaintext (all) = created-at ms (u64 BE) | last-seen ms (u64 BE) | JSON object
//! chunk:     version=3 | generation (12) | index (1) | count (1) | piece
//!            the pieces of chunks 0 .. count-1, in index order, are one chunked envelope:
//!            key id (4) | salt (24) | AES-256-GCM(ciphertext | tag 16), message key and
//!            nonce as in format 2
//! ```
//!
//! # Chunked envelopes
//!
//! A session that opts in (`cookie_chunks` above 1) and whose sealed record does not fit
//! one 4096-byte `Set-Cookie` line is sealed once into a chunked envelope, which is cut
//! into pieces sent as the cookies `name`, `name.1`, ... Each cookie value is the base64
//! of one chunk: a header naming the set (a 96-bit random generation id drawn per seal,
//! the chunk's index and the set's chunk count) and a piece of the envelope. The
//! generation id and the count are part of the envelope's associated data, so the one
//! GCM tag authenticates them together with every piece in order. Reassembly checks the
//! headers before anything is decrypted: chunk `k` must come from the cookie `name.k`,
//! every chunk of the set must be present exactly once with the same generation id and
//! count, and no chunk of that generation may sit outside the set; then the tag decides.
//! A partial, mixed (two generations), reordered or duplicated set, or one with a chunk
//! moved, cut or edited, fails with [`Rejection::ChunkSet`] or the tag. Chunk cookies of
//! another generation beyond the set's count (left over from an earlier, larger
//! session) are ignored: they are outside what the tag covers.
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
//!   session | cookie`, precomputed per key, for both sealed versions.
//!
//! Nothing is parsed before the tag is verified, and tags are compared in constant time.
//!
//! # How many cookies one secret can seal
//!
//! Format 1 sealed every cookie under one AES-256-GCM key per secret with a random 96-bit
//! nonce. Two seals that draw the same nonce reveal the XOR of their plaintexts and let
//! an attacker forge cookies, and after `q` seals the chance of that is about
//! `q² / 2^97`: NIST SP 800-38D caps such use at 2^32 seals per key (a chance near
//! 2^-33). A site that re-seals on every idle touch can get there: 1,000 seals a second
//! use up 2^32 in seven weeks.
//!
//! Format 2 draws a fresh 192-bit salt per seal and derives a one-time AES-256 key from
//! it with HKDF-Expand (HMAC-SHA256) under a per-secret key `K_seal`; as each message key
//! seals a single record, the GCM nonce is a constant. Two seals share a message key, and
//! so a nonce, only if they draw the same salt: after `q` seals the chance is at most
//! `q² / 2^193`, below 2^-65 after 2^64 seals (a million seals a second for
//! 500,000 years). The other terms are HMAC-SHA256's PRF security under one key (no
//! generic attack below about 2^128 queries) and AES-256-GCM's single-use security, which
//! against `q` one-time keys at once loses at most a factor `q` (2^-192 per unit of work
//! at 2^64 keys). The per-secret nonce budget is therefore no longer a practical limit;
//! rotating secrets remains good hygiene. Cost: two SHA-256 compressions (the HMAC's
//! padded-key states are prepared once), one AES-256 key expansion and one AES block per
//! seal and per open (the core bench compares `open+seal` with `open+seal-v1`); the cookie
//! is 12 bytes (16 characters) longer than in format 1.
//!
//! The salt, like format 1's nonce, comes from the caller's CSPRNG: a generator that
//! repeats its output (a thread RNG copied by `fork` and not reseeded) repeats salts, as it
//! would repeat session ids. Reseed in a forked child before it seals anything.
//!
//! Format 1 cookies still open with the key id's format-1 key, so an upgrade logs nobody
//! out, and the next write re-seals them in format 2.

use aes_gcm::aead::{AeadInOut, Nonce, Tag};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::Mac;
use hmac::digest::FixedOutput;
use rand_core::CryptoRng;
use serde_json::{Map, Value};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::cookies::{ChunkSlot, MAX_SET_COOKIE_LEN};
use crate::id::SessionId;
use crate::keys::{DerivedKeys, KeyId, KeyRing, KeyUse, MacKey};
use crate::time::Timestamp;

/// The format version of signed-id envelopes, and of the sealed envelopes made before
/// [`SEALED_FORMAT_VERSION`] (still opened, never made).
pub const FORMAT_VERSION: u8 = 1;

/// The format version of the sealed envelopes made now: a per-cookie message key from a
/// 192-bit random salt (see the [module docs](self)).
pub const SEALED_FORMAT_VERSION: u8 = 2;

const SIGNED_LABEL: &[u8] = b"sessionkit/v1/signed-id";
const SEALED_LABEL: &[u8] = b"sessionkit/v1/sealed-record";
/// Label + 24-byte salt + HKDF's counter byte fit in one SHA-256 block after the
/// prepared inner-padding state, so a message key costs two compressions.
const MESSAGE_KEY_LABEL: &[u8] = b"sessionkit/v2/message-key";
/// The layout shared by both envelopes: a version byte, then the 4-byte key id.
const VERSION_AT: usize = 0;
const KEY_ID: std::ops::Range<usize> = 1..5;
/// A signed id envelope: version, key id, the 32-byte id, then the HMAC-SHA256 tag over
/// everything before it.
const SIGNED_ID: std::ops::Range<usize> = KEY_ID.end..KEY_ID.end + 32;
const SIGNED_MAC_INPUT: std::ops::RangeTo<usize> = ..SIGNED_ID.end;
const SIGNED_TAG: std::ops::RangeFrom<usize> = SIGNED_ID.end..;
const SIGNED_LEN: usize = SIGNED_ID.end + 32;
/// Length of a signed id cookie value in characters.
pub const SIGNED_COOKIE_LEN: usize = SIGNED_LEN.div_ceil(3) * 4 - (3 - SIGNED_LEN % 3) % 3;
const SALT_LEN: usize = 24;
/// Format 2: version, key id, salt; then the sealed plaintext and the GCM tag.
const SEALED_HEADER: usize = KEY_ID.end + SALT_LEN;
/// Format 1: version, key id, nonce; then the sealed plaintext and the GCM tag.
const SEALED_HEADER_V1: usize = KEY_ID.end + 12;
const TAG_LEN: usize = 16;
/// The format-2 nonce: each message key seals one record, so a constant is unique per key.
const MESSAGE_NONCE: [u8; 12] = [0; 12];
/// The longest sealed cookie value sessionkit will open, in characters. Anything longer
/// could not have come from a conforming Set-Cookie header.
pub const MAX_SEALED_COOKIE_LEN: usize = 8192;
/// The format version of the chunks of a sealed record split over several cookies (see
/// the [module docs](self)).
pub const CHUNKED_FORMAT_VERSION: u8 = 3;
/// A chunk: version, generation id, index and count; then its piece of the envelope.
const CHUNK_GENERATION: std::ops::Range<usize> = 1..13;
const CHUNK_INDEX_AT: usize = CHUNK_GENERATION.end;
const CHUNK_COUNT_AT: usize = CHUNK_INDEX_AT + 1;
const CHUNK_HEADER: usize = CHUNK_COUNT_AT + 1;
/// The random id that ties the chunks of one seal together.
type Generation = [u8; CHUNK_GENERATION.end - CHUNK_GENERATION.start];

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
    /// The chunk cookies of a chunked session do not form one whole set: a chunk is
    /// missing, duplicated, out of place or of another generation, the set has more
    /// chunks than the session allows, or a chunk of the set's generation is outside it.
    #[error("chunked cookie set is incomplete, mixed or out of order")]
    ChunkSet,
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

/// The key id of an envelope at least [`KEY_ID`]`.end` bytes long.
fn key_id_of(envelope: &[u8]) -> [u8; 4] {
    let mut key_id = [0u8; 4];
    key_id.copy_from_slice(&envelope[KEY_ID]);
    key_id
}

/// Signs `id` with the primary key.
pub(crate) fn sign_id(keys: &IdKeys, id: &SessionId) -> String {
    let (key_id, mac, _) = keys.primary();
    let mut envelope = [0u8; SIGNED_LEN];
    envelope[VERSION_AT] = FORMAT_VERSION;
    envelope[KEY_ID].copy_from_slice(&key_id.0);
    envelope[SIGNED_ID].copy_from_slice(id.as_bytes());
    let mut mac = mac.start();
    mac.update(&envelope[SIGNED_MAC_INPUT]);
    envelope[SIGNED_TAG].copy_from_slice(&mac.finalize().into_bytes());
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
    if envelope[VERSION_AT] != FORMAT_VERSION {
        return Err(Rejection::UnsupportedVersion);
    }
    let key_id = key_id_of(&envelope);
    let mut seen = false;
    for (id, mac, key_use) in keys.keys.iter().filter(|(id, _, _)| id.0 == key_id) {
        debug_assert_eq!(id.0, key_id);
        seen = true;
        let mut mac = mac.start();
        mac.update(&envelope[SIGNED_MAC_INPUT]);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&envelope[SIGNED_TAG]).is_ok() {
            let mut id = [0u8; 32];
            id.copy_from_slice(&envelope[SIGNED_ID]);
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

/// One key of the ring, prepared for one binding.
struct SealKey {
    id: KeyId,
    key_use: KeyUse,
    /// HKDF-Expand key of format 2's per-cookie message keys.
    kdf: MacKey,
    /// Format 2's associated data.
    ad: Vec<u8>,
    /// The chunked format's associated data, before the generation id and the count.
    chunked_ad: Vec<u8>,
    /// Format 1's fixed AES-256-GCM key, to open cookies sealed before the upgrade.
    v1: Aes256Gcm,
    /// Format 1's associated data.
    v1_ad: Vec<u8>,
}

impl SealKey {
    /// The associated data of a chunked envelope of generation `generation` split into
    /// `count` chunks.
    fn chunked_ad(&self, generation: &Generation, count: u8) -> Vec<u8> {
        let mut ad = Vec::with_capacity(self.chunked_ad.len() + generation.len() + 1);
        ad.extend_from_slice(&self.chunked_ad);
        ad.extend_from_slice(generation);
        ad.push(count);
        ad
    }

    /// The one-time cipher of the format-2 record sealed with `salt`.
    fn message_cipher(&self, salt: &[u8; SALT_LEN]) -> Aes256Gcm {
        // HKDF-Expand (RFC 5869) for one output block: T(1) = HMAC(PRK, info | 0x01).
        let mut mac = self.kdf.start();
        mac.update(MESSAGE_KEY_LABEL);
        mac.update(salt);
        mac.update(&[1]);
        let mut key = Zeroizing::new([0u8; 32]);
        mac.finalize_into((&mut *key).into());
        Aes256Gcm::new((&*key).into())
    }
}

/// The sealing keys of one binding: for every key of the ring, the key that derives
/// per-cookie message keys, the format-1 key, and the precomputed associated data.
/// Wiped on drop.
pub struct SealKeys {
    /// Primary first.
    keys: Vec<SealKey>,
}

impl SealKeys {
    /// Prepares the binding's sealing keys from every key of `ring`.
    pub fn new(ring: &KeyRing, binding: &Binding<'_>) -> Self {
        let entry = |derived: &DerivedKeys, key_use| SealKey {
            id: derived.id,
            key_use,
            kdf: derived.sealing_kdf.clone(),
            ad: binding.associated_data(SEALED_FORMAT_VERSION, derived.id.0),
            chunked_ad: binding.associated_data(CHUNKED_FORMAT_VERSION, derived.id.0),
            v1: derived.sealing_v1.clone(),
            v1_ad: binding.associated_data(FORMAT_VERSION, derived.id.0),
        };
        let mut keys = vec![entry(ring.primary(), KeyUse::Primary)];
        keys.extend(ring.previous().map(|k| entry(k, KeyUse::Previous)));
        SealKeys { keys }
    }

    fn primary(&self) -> &SealKey {
        &self.keys[0]
    }
}

// The secrets are `MacKey`s and `Aes256Gcm`s, both checked in `keys`.
impl ZeroizeOnDrop for SealKeys {}

impl std::fmt::Debug for SealKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|key| key.id))
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

/// Seals a record with the primary key in the current format: a fresh random salt and
/// the one-time message key derived from it.
///
/// # Errors
/// [`SealError`] when the data cannot be encoded.
pub(crate) fn seal<R: CryptoRng + ?Sized>(
    keys: &SealKeys,
    record: &SealedRecord,
    rng: &mut R,
) -> Result<String, SealError> {
    let key = keys.primary();
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut buf = plaintext_after(SEALED_FORMAT_VERSION, key.id, &salt, record)?;
    let tag = key
        .message_cipher(&salt)
        .encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(MESSAGE_NONCE),
            &key.ad,
            buf[SEALED_HEADER..].as_mut().into(),
        )
        .map_err(|_| SealError::Aead)?;
    buf.extend_from_slice(&tag);
    Ok(B64.encode(&buf))
}

/// Seals a record in format 1 (a random nonce under the fixed key), as sessionkit did
/// before format 2: for tests that prove such cookies still open.
///
/// # Errors
/// [`SealError`] when the data cannot be encoded.
#[cfg(any(test, feature = "internal"))]
pub(crate) fn seal_v1<R: CryptoRng + ?Sized>(
    keys: &SealKeys,
    record: &SealedRecord,
    rng: &mut R,
) -> Result<String, SealError> {
    let key = keys.primary();
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut buf = plaintext_after(FORMAT_VERSION, key.id, &nonce, record)?;
    let tag = key
        .v1
        .encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(nonce),
            &key.v1_ad,
            buf[SEALED_HEADER_V1..].as_mut().into(),
        )
        .map_err(|_| SealError::Aead)?;
    buf.extend_from_slice(&tag);
    Ok(B64.encode(&buf))
}

/// Why a record could not be sealed into chunks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedSealError {
    /// The record could not be sealed at all.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The chunks would need more cookies than allowed.
    #[error("the sealed record is {size} characters long, more than the allowed chunks hold")]
    TooLarge {
        /// The length of the whole chunked envelope in base64 characters.
        size: usize,
    },
}

/// Seals a record with the primary key into a chunked envelope and cuts it into at most
/// `max_chunks` chunks, filling them in index order. `capacity(k)` is the longest value
/// the cookie of chunk `k` can carry, in characters. Returns the cookie values, chunk 0
/// first.
///
/// # Errors
/// [`ChunkedSealError::TooLarge`] when `max_chunks` chunks cannot hold the envelope;
/// [`ChunkedSealError::Seal`] when the data cannot be encoded.
pub(crate) fn seal_chunked<R: CryptoRng + ?Sized>(
    keys: &SealKeys,
    record: &SealedRecord,
    rng: &mut R,
    max_chunks: u8,
    capacity: impl Fn(usize) -> usize,
) -> Result<Vec<String>, ChunkedSealError> {
    let key = keys.primary();
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut generation = Generation::default();
    rng.fill_bytes(&mut generation);
    // The envelope is `buf[1..]`: the leading version byte keeps format 2's offsets.
    let mut buf = plaintext_after(CHUNKED_FORMAT_VERSION, key.id, &salt, record)?;
    let envelope_len = buf.len() - 1 + TAG_LEN;
    let mut pieces = Vec::with_capacity(usize::from(max_chunks));
    let mut left = envelope_len;
    for index in 0..usize::from(max_chunks) {
        // The most bytes whose unpadded base64 fits `capacity` characters.
        let room = (capacity(index).saturating_mul(3) / 4).saturating_sub(CHUNK_HEADER);
        if left == 0 || room == 0 {
            break;
        }
        let piece = room.min(left);
        pieces.push(piece);
        left -= piece;
    }
    let count = match u8::try_from(pieces.len()) {
        Ok(count) if left == 0 && count > 0 => count,
        _ => {
            return Err(ChunkedSealError::TooLarge {
                size: envelope_len.div_ceil(3) * 4 - (3 - envelope_len % 3) % 3,
            });
        }
    };
    let tag = key
        .message_cipher(&salt)
        .encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(MESSAGE_NONCE),
            &key.chunked_ad(&generation, count),
            buf[SEALED_HEADER..].as_mut().into(),
        )
        .map_err(|_| SealError::Aead)?;
    buf.extend_from_slice(&tag);
    let mut at = 1;
    let mut chunk = Vec::with_capacity(CHUNK_HEADER + pieces.first().copied().unwrap_or(0));
    let mut values = Vec::with_capacity(pieces.len());
    for (index, len) in (0u8..).zip(pieces) {
        chunk.clear();
        chunk.push(CHUNKED_FORMAT_VERSION);
        chunk.extend_from_slice(&generation);
        chunk.extend_from_slice(&[index, count]);
        chunk.extend_from_slice(&buf[at..at + len]);
        at += len;
        values.push(B64.encode(&chunk));
    }
    Ok(values)
}

/// The envelope header (version, key id, salt or nonce) followed by the plaintext.
fn plaintext_after(
    version: u8,
    key_id: KeyId,
    salt_or_nonce: &[u8],
    record: &SealedRecord,
) -> Result<Vec<u8>, SealError> {
    let mut buf = Vec::with_capacity(KEY_ID.end + salt_or_nonce.len() + 16 + 64 + TAG_LEN);
    buf.push(version);
    buf.extend_from_slice(&key_id.0);
    buf.extend_from_slice(salt_or_nonce);
    buf.extend_from_slice(&record.created_at.as_millis().to_be_bytes());
    buf.extend_from_slice(&record.last_seen.as_millis().to_be_bytes());
    serde_json::to_writer(&mut buf, &record.data).map_err(SealError::Encode)?;
    Ok(buf)
}

/// Opens a sealed cookie value of format 1 or 2 (never a chunk).
///
/// # Errors
/// A [`Rejection`] saying why the value is not an authentic record for this binding.
pub(crate) fn open(keys: &SealKeys, value: &str) -> Result<Opened, Rejection> {
    open_envelope(keys, decode(value, MAX_SEALED_COOKIE_LEN)?, None)
}

/// Opens the cookie of a chunked session: a sealed value of format 1 or 2 like
/// [`open`], or chunk 0 of a chunked envelope whose other chunks are in `chunks`
/// (`chunks[k - 1]` is what the request carried as `name.k`). The set may have at most
/// `max_chunks` chunks. See the [module docs](self) for what reassembly checks.
///
/// # Errors
/// A [`Rejection`] saying why the cookies are not an authentic record for this binding;
/// [`Rejection::ChunkSet`] when the chunk headers do not describe one whole set.
pub(crate) fn open_chunked(
    keys: &SealKeys,
    value: &str,
    chunks: &[ChunkSlot],
    max_chunks: u8,
) -> Result<Opened, Rejection> {
    let first = decode(value, MAX_SEALED_COOKIE_LEN)?;
    if first.first() != Some(&CHUNKED_FORMAT_VERSION) {
        return open_envelope(keys, first, None);
    }
    if value.len() > MAX_SET_COOKIE_LEN {
        return Err(Rejection::Malformed);
    }
    let (generation, index, count) = chunk_header(&first).ok_or(Rejection::Malformed)?;
    if index != 0 || count == 0 || count > max_chunks || usize::from(count) > chunks.len() + 1 {
        return Err(Rejection::ChunkSet);
    }
    // The version byte, then the pieces in order: format 2's offsets.
    let mut envelope = first;
    envelope.drain(1..CHUNK_HEADER);
    for index in 1..count {
        let Some(ChunkSlot::One(value)) = chunks.get(usize::from(index) - 1) else {
            return Err(Rejection::ChunkSet);
        };
        let chunk = decode(value, MAX_SET_COOKIE_LEN).map_err(|_| Rejection::ChunkSet)?;
        if chunk_header(&chunk) != Some((generation, index, count)) {
            return Err(Rejection::ChunkSet);
        }
        envelope.extend_from_slice(&chunk[CHUNK_HEADER..]);
    }
    // A chunk of this generation outside the set was moved or made by someone else.
    let outside = chunks.iter().skip(usize::from(count) - 1).any(|slot| match slot {
        ChunkSlot::One(value) => decode(value, MAX_SET_COOKIE_LEN)
            .ok()
            .and_then(|chunk| chunk_header(&chunk))
            .is_some_and(|(other, _, _)| other == generation),
        ChunkSlot::Absent | ChunkSlot::Duplicate => false,
    });
    if outside {
        return Err(Rejection::ChunkSet);
    }
    open_envelope(keys, envelope, Some((generation, count)))
}

/// The base64 decoding of a cookie value of at most `max_len` characters.
fn decode(value: &str, max_len: usize) -> Result<Vec<u8>, Rejection> {
    if value.len() > max_len {
        return Err(Rejection::Malformed);
    }
    B64.decode(value).map_err(|_| Rejection::Malformed)
}

/// The generation id, index and count of a decoded chunk.
fn chunk_header(chunk: &[u8]) -> Option<(Generation, u8, u8)> {
    if chunk.len() < CHUNK_HEADER || chunk[VERSION_AT] != CHUNKED_FORMAT_VERSION {
        return None;
    }
    let mut generation = Generation::default();
    generation.copy_from_slice(&chunk[CHUNK_GENERATION]);
    Some((generation, chunk[CHUNK_INDEX_AT], chunk[CHUNK_COUNT_AT]))
}

/// Opens a decoded envelope: format 1 or 2 when `chunked` is `None`, a reassembled
/// chunked envelope (its version byte, then the pieces) of the given generation and
/// count otherwise.
fn open_envelope(
    keys: &SealKeys,
    mut buf: Vec<u8>,
    chunked: Option<(Generation, u8)>,
) -> Result<Opened, Rejection> {
    if buf.len() < SEALED_HEADER_V1 + 16 + TAG_LEN {
        return Err(Rejection::Malformed);
    }
    let header = match (buf[VERSION_AT], chunked) {
        (SEALED_FORMAT_VERSION, None) | (CHUNKED_FORMAT_VERSION, Some(_)) => SEALED_HEADER,
        (FORMAT_VERSION, None) => SEALED_HEADER_V1,
        _ => return Err(Rejection::UnsupportedVersion),
    };
    if buf.len() < header + 16 + TAG_LEN {
        return Err(Rejection::Malformed);
    }
    let key_id = key_id_of(&buf);
    let tag_at = buf.len() - TAG_LEN;
    let mut tag = Tag::<Aes256Gcm>::default();
    tag.copy_from_slice(&buf[tag_at..]);
    let (head, rest) = buf.split_at_mut(header);
    let body = &mut rest[..tag_at - header];
    let mut seen = false;
    for key in keys.keys.iter().filter(|key| key.id.0 == key_id) {
        seen = true;
        // AES-GCM checks the tag before decrypting, so a failed attempt leaves the
        // ciphertext as it was for the next candidate key.
        let opened = if header == SEALED_HEADER {
            let mut salt = [0u8; SALT_LEN];
            salt.copy_from_slice(&head[KEY_ID.end..]);
            let chunked_ad;
            let ad = match &chunked {
                Some((generation, count)) => {
                    chunked_ad = key.chunked_ad(generation, *count);
                    &chunked_ad
                }
                None => &key.ad,
            };
            key.message_cipher(&salt).decrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(MESSAGE_NONCE),
                ad,
                (&mut *body).into(),
                &tag,
            )
        } else {
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&head[KEY_ID.end..]);
            key.v1.decrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(nonce),
                &key.v1_ad,
                (&mut *body).into(),
                &tag,
            )
        };
        if opened.is_ok() {
            let record = parse_plaintext(body).ok_or(Rejection::Corrupt)?;
            return Ok(Opened {
                record,
                key: key.key_use,
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

    /// A valid envelope of `version` whose plaintext is `plain`, built by hand.
    fn hand_sealed(keys: &KeyRing, version: u8, plain: &[u8]) -> String {
        let seal_keys = seals(keys, &BIND);
        let key = seal_keys.primary();
        let mut buf = vec![version];
        buf.extend_from_slice(&key.id.0);
        let header = if version == SEALED_FORMAT_VERSION {
            SEALED_HEADER
        } else {
            SEALED_HEADER_V1
        };
        buf.resize(header, 7);
        buf.extend_from_slice(plain);
        let (cipher, nonce, ad) = if version == SEALED_FORMAT_VERSION {
            (key.message_cipher(&[7; SALT_LEN]), MESSAGE_NONCE, &key.ad)
        } else {
            (key.v1.clone(), [7; 12], &key.v1_ad)
        };
        let tag = cipher
            .encrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(nonce),
                ad,
                buf[header..].as_mut().into(),
            )
            .expect("seal");
        buf.extend_from_slice(&tag);
        B64.encode(&buf)
    }

    #[test]
    fn authentic_non_record_is_corrupt() {
        let keys = ring(3);
        let mut plain = vec![0u8; 16];
        plain.extend_from_slice(b"[1,2]");
        for version in [FORMAT_VERSION, SEALED_FORMAT_VERSION] {
            assert_eq!(
                open(&seals(&keys, &BIND), &hand_sealed(&keys, version, &plain)).err(),
                Some(Rejection::Corrupt)
            );
        }
        // The same construction with a record inside opens: the test above is not
        // failing for another reason.
        let mut plain = vec![0u8; 16];
        plain.extend_from_slice(b"{}");
        for version in [FORMAT_VERSION, SEALED_FORMAT_VERSION] {
            assert!(open(&seals(&keys, &BIND), &hand_sealed(&keys, version, &plain)).is_ok());
        }
    }

    fn record() -> SealedRecord {
        let mut data = Map::new();
        data.insert("user".into(), json!("ada"));
        SealedRecord::new(Timestamp::from_millis(1), Timestamp::from_millis(2), data)
    }

    #[test]
    fn new_seals_use_format_2_and_format_1_still_opens() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let keys = ring(4);
        let value = seal(&seals(&keys, &BIND), &record(), &mut rng).expect("seals");
        let bytes = B64.decode(&value).expect("b64");
        assert_eq!(bytes[0], SEALED_FORMAT_VERSION);
        let json_len = br#"{"user":"ada"}"#.len();
        assert_eq!(bytes.len(), SEALED_HEADER + 16 + json_len + TAG_LEN);
        let old = seal_v1(&seals(&keys, &BIND), &record(), &mut rng).expect("seals");
        assert_eq!(B64.decode(&old).expect("b64")[0], FORMAT_VERSION);
        let opened = open(&seals(&keys, &BIND), &old).expect("format 1 opens");
        assert_eq!((opened.record, opened.key), (record(), KeyUse::Primary));
        // A format-1 cookie made with a previous secret opens as such, so it is re-sealed.
        let rotated = KeyRing::new(&Secret::new(vec![5u8; 32]).expect("long"))
            .with_previous(&Secret::new(vec![4u8; 32]).expect("long"));
        assert_eq!(
            open(&seals(&rotated, &BIND), &old).expect("opens").key,
            KeyUse::Previous
        );
    }

    #[test]
    fn the_version_byte_is_authenticated() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let keys = ring(4);
        let relabel = |value: &str, version: u8| {
            let mut bytes = B64.decode(value).expect("b64");
            bytes[0] = version;
            B64.encode(bytes)
        };
        let new = seal(&seals(&keys, &BIND), &record(), &mut rng).expect("seals");
        let old = seal_v1(&seals(&keys, &BIND), &record(), &mut rng).expect("seals");
        for (value, other) in [(&new, FORMAT_VERSION), (&old, SEALED_FORMAT_VERSION)] {
            assert_eq!(
                open(&seals(&keys, &BIND), &relabel(value, other)).err(),
                Some(Rejection::BadTag)
            );
        }
        for version in [0, 3, 255] {
            assert_eq!(
                open(&seals(&keys, &BIND), &relabel(&new, version)).err(),
                Some(Rejection::UnsupportedVersion)
            );
        }
    }

    #[test]
    fn every_salt_gives_its_own_message_key() {
        let keys = ring(6);
        let seal_keys = seals(&keys, &BIND);
        let key = seal_keys.primary();
        let encrypt = |salt: [u8; SALT_LEN]| {
            let mut block = [0u8; 16];
            let tag = key
                .message_cipher(&salt)
                .encrypt_inout_detached(
                    &Nonce::<Aes256Gcm>::from(MESSAGE_NONCE),
                    b"",
                    (&mut block[..]).into(),
                )
                .expect("seal");
            (block, tag)
        };
        let mut other = [0u8; SALT_LEN];
        other[SALT_LEN - 1] = 1;
        assert_eq!(encrypt([0; SALT_LEN]), encrypt([0; SALT_LEN]));
        assert_ne!(encrypt([0; SALT_LEN]).0, encrypt(other).0);
        // And the derivation depends on the secret.
        let stranger = seals(&ring(7), &BIND);
        let mut block = [0u8; 16];
        stranger
            .primary()
            .message_cipher(&[0; SALT_LEN])
            .encrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(MESSAGE_NONCE),
                b"",
                (&mut block[..]).into(),
            )
            .expect("seal");
        assert_ne!(block, encrypt([0; SALT_LEN]).0);
    }

    #[test]
    fn truncated_format_2_envelopes_are_malformed() {
        let keys = ring(4);
        // Long enough for format 1, too short for format 2's salt, plaintext and tag.
        let mut bytes = vec![SEALED_FORMAT_VERSION];
        bytes.extend_from_slice(&keys.primary().id.0);
        bytes.resize(SEALED_HEADER + 16 + TAG_LEN - 1, 0);
        assert_eq!(
            open(&seals(&keys, &BIND), &B64.encode(&bytes)).err(),
            Some(Rejection::Malformed)
        );
    }

    fn big_record(len: usize) -> SealedRecord {
        let mut data = Map::new();
        data.insert("blob".into(), json!("x".repeat(len)));
        SealedRecord::new(Timestamp::from_millis(1), Timestamp::from_millis(2), data)
    }

    fn slots(values: &[String]) -> Vec<ChunkSlot> {
        let mut slots: Vec<ChunkSlot> = values.iter().skip(1).cloned().map(ChunkSlot::One).collect();
        slots.resize(7, ChunkSlot::Absent);
        slots
    }

    #[test]
    fn chunks_fill_their_capacity_in_order_and_reassemble() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let keys = seals(&ring(4), &BIND);
        let record = big_record(5_000);
        let values = seal_chunked(&keys, &record, &mut rng, 8, |i| 1_000 + i).expect("fits");
        let json_len = br#"{"blob":""}"#.len() + 5_000;
        let envelope = 4 + SALT_LEN + 16 + json_len + TAG_LEN;
        assert_eq!(values.len(), envelope.div_ceil(1_000 * 3 / 4 - CHUNK_HEADER));
        let generation = chunk_header(&B64.decode(&values[0]).expect("b64"))
            .expect("chunk")
            .0;
        for (i, value) in values.iter().enumerate() {
            assert!(value.len() <= 1_000 + i, "chunk {i} is {} long", value.len());
            let chunk = B64.decode(value).expect("b64");
            assert_eq!(
                chunk_header(&chunk),
                Some((
                    generation,
                    u8::try_from(i).expect("small"),
                    u8::try_from(values.len()).expect("small")
                ))
            );
        }
        let opened = open_chunked(&keys, &values[0], &slots(&values), 8).expect("opens");
        assert_eq!((opened.record, opened.key), (record.clone(), KeyUse::Primary));
        // A fresh seal draws a fresh generation.
        let again = seal_chunked(&keys, &record, &mut rng, 8, |i| 1_000 + i).expect("fits");
        assert_ne!(
            chunk_header(&B64.decode(&again[0]).expect("b64"))
                .expect("chunk")
                .0,
            generation
        );
        // Too few chunks, or no room at all, is a typed error with the whole size.
        for (max, room) in [(3, 1_000), (8, 20)] {
            match seal_chunked(&keys, &record, &mut rng, max, |_| room) {
                Err(ChunkedSealError::TooLarge { size }) => {
                    assert_eq!(size, envelope.div_ceil(3) * 4 - (3 - envelope % 3) % 3);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_chunk_set_must_be_whole_and_in_place() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let keys = seals(&ring(4), &BIND);
        let values = seal_chunked(&keys, &big_record(3_000), &mut rng, 8, |_| 1_500).expect("fits");
        assert_eq!(values.len(), 3);
        let other = seal_chunked(&keys, &big_record(3_000), &mut rng, 8, |_| 1_500).expect("fits");
        let open = |first: &str, slots: &[ChunkSlot], max: u8| open_chunked(&keys, first, slots, max).err();
        let whole = slots(&values);
        assert_eq!(open(&values[0], &whole, 8), None);
        assert_eq!(open(&values[0], &whole, 3), None, "a cap equal to the count");
        assert_eq!(
            open(&values[0], &whole, 2),
            Some(Rejection::ChunkSet),
            "more chunks than the cap"
        );
        let edit = |index: usize, slot: ChunkSlot| {
            let mut slots = whole.clone();
            slots[index] = slot;
            slots
        };
        let cases = [
            ("missing", edit(1, ChunkSlot::Absent)),
            ("duplicated", edit(0, ChunkSlot::Duplicate)),
            ("mixed", edit(1, ChunkSlot::One(other[2].clone()))),
            ("reordered", {
                let mut slots = whole.clone();
                slots.swap(0, 1);
                slots
            }),
            (
                "extra of the same generation",
                edit(2, ChunkSlot::One(values[2].clone())),
            ),
            ("garbage", edit(0, ChunkSlot::One("%%".into()))),
            (
                "too long",
                edit(0, ChunkSlot::One("A".repeat(MAX_SET_COOKIE_LEN + 1))),
            ),
            (
                "a single envelope",
                edit(
                    0,
                    ChunkSlot::One(seal(&keys, &record(), &mut rng).expect("seals")),
                ),
            ),
        ];
        for (what, slots) in cases {
            assert_eq!(open(&values[0], &slots, 8), Some(Rejection::ChunkSet), "{what}");
        }
        // Chunk 0 must come first, and be chunk 0.
        assert_eq!(open(&values[1], &whole, 8), Some(Rejection::ChunkSet));
        // Leftovers of another generation beyond the set are outside it.
        assert_eq!(
            open(&values[0], &edit(3, ChunkSlot::One(other[1].clone())), 8),
            None
        );
        assert_eq!(open(&values[0], &edit(3, ChunkSlot::Duplicate), 8), None);
        // A single envelope still opens on a chunked session, whatever the chunk slots.
        let single = seal(&keys, &record(), &mut rng).expect("seals");
        assert!(open_chunked(&keys, &single, &whole, 8).is_ok());
        // And a chunk never opens as a single envelope.
        assert_eq!(
            super::open(&keys, &values[0]).err(),
            Some(Rejection::UnsupportedVersion)
        );
    }

    #[test]
    fn the_generation_and_the_count_are_authenticated() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let keys = seals(&ring(4), &BIND);
        let values = seal_chunked(&keys, &big_record(3_000), &mut rng, 8, |_| 1_500).expect("fits");
        let rewrite = |values: &[String], change: &dyn Fn(&mut Vec<u8>)| -> Vec<String> {
            values
                .iter()
                .map(|v| {
                    let mut chunk = B64.decode(v).expect("b64");
                    change(&mut chunk);
                    B64.encode(chunk)
                })
                .collect()
        };
        // The same new generation in every header: consistent, but not what was sealed.
        let regenerated = rewrite(&values, &|chunk| chunk[CHUNK_GENERATION.start] ^= 1);
        assert_eq!(
            open_chunked(&keys, &regenerated[0], &slots(&regenerated), 8).err(),
            Some(Rejection::BadTag)
        );
        // Two chunks claiming to be the whole set: the pieces are all there...
        let mut merged = B64.decode(&values[1]).expect("b64")[CHUNK_HEADER..].to_vec();
        merged.extend_from_slice(&B64.decode(&values[2]).expect("b64")[CHUNK_HEADER..]);
        let mut second = B64.decode(&values[1]).expect("b64")[..CHUNK_HEADER].to_vec();
        second.extend_from_slice(&merged);
        let recounted = rewrite(&[values[0].clone(), B64.encode(second)], &|chunk| {
            chunk[CHUNK_COUNT_AT] = 2;
        });
        // ...but the count is part of the associated data.
        assert_eq!(
            open_chunked(&keys, &recounted[0], &slots(&recounted), 8).err(),
            Some(Rejection::BadTag)
        );
        // A piece moved across a boundary changes nothing that matters: same envelope.
        let mut first = B64.decode(&values[0]).expect("b64");
        let mut next = B64.decode(&values[1]).expect("b64");
        let moved = first.pop().expect("non-empty");
        next.insert(CHUNK_HEADER, moved);
        let shifted = [B64.encode(first), B64.encode(next), values[2].clone()];
        assert!(open_chunked(&keys, &shifted[0], &slots(&shifted), 8).is_ok());
        // Another binding's keys do not open it.
        let other = seals(
            &ring(4),
            &Binding {
                cookie: "__Host-other",
                ..BIND
            },
        );
        assert_eq!(
            open_chunked(&other, &values[0], &slots(&values), 8).err(),
            Some(Rejection::BadTag)
        );
    }

    #[test]
    fn key_holders_are_zeroized_on_drop() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<IdKeys>();
        zeroized_on_drop::<SealKeys>();
    }
}
