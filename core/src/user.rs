//! Binding a session to a user: the binding kept in the record, the key of a user's
//! index in a store, and the public handle that names one session of a user.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::def::SessionName;
use crate::id::{Namespace, StoreKey};
use crate::machine::USER_KEY;
use crate::record::{Patch, Record};

fn hex(bytes: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The longest user id a session can be bound to, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// The longest session label, in bytes (a longer one is cut at a character boundary).
pub const MAX_LABEL_LEN: usize = 200;

/// A user id or label that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The user id is empty or longer than [`MAX_USER_ID_LEN`] bytes.
    #[error("a user id must be 1 to {MAX_USER_ID_LEN} bytes long, got {len}")]
    IdLength {
        /// Its length.
        len: usize,
    },
    /// A label needs a user: bind the session first.
    #[error("a session label needs a user: call set_user first")]
    NoUser,
}

/// Who a session belongs to, and the label the app gave it (e.g. a summary of the
/// browser), as kept in the record. Stores keep the id as the app gives it, in the
/// record; indexes are keyed by a hash of it ([`UserKey`]).
///
/// The binding also carries the digest of the user's [`UserKey`], so a driver that keeps
/// per-user indexes finds the index of a record (or of a patch that binds one) from the
/// record alone ([`UserKey::of_record`], [`UserKey::of_patch`]).
#[derive(Clone, PartialEq, Eq)]
pub struct UserBinding {
    id: String,
    label: Option<String>,
    index: [u8; 32],
    /// A cookie session's own handle (server sessions' handles come from their store
    /// key): random, made when the session is bound, kept across re-seals.
    handle: Option<SessionHandle>,
}

impl UserBinding {
    /// A binding of a session of `session` in `namespace` to user `id`, without a label.
    ///
    /// # Errors
    /// [`UserError::IdLength`].
    pub fn new(namespace: &Namespace, session: &SessionName, id: &str) -> Result<Self, UserError> {
        if id.is_empty() || id.len() > MAX_USER_ID_LEN {
            return Err(UserError::IdLength { len: id.len() });
        }
        Ok(UserBinding {
            id: id.to_owned(),
            label: None,
            index: *UserKey::new(namespace, session, id).digest(),
            handle: None,
        })
    }

    /// A cookie session's handle, if it has one.
    pub fn handle(&self) -> Option<SessionHandle> {
        self.handle
    }

    pub(crate) fn set_handle(&mut self, handle: SessionHandle) {
        self.handle = Some(handle);
    }

    /// The key of the user's index, in the namespace of the session's store key.
    pub fn index_key(&self, namespace: &Namespace) -> UserKey {
        UserKey::from_digest(namespace.clone(), self.index)
    }

    /// The user id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The label, if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Sets the label, cut to [`MAX_LABEL_LEN`] bytes at a character boundary.
    pub fn set_label(&mut self, label: &str) {
        let mut end = label.len().min(MAX_LABEL_LEN);
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        self.label = Some(label[..end].to_owned());
    }

    /// The stored form: `{"id": "...", "k": "<hex of the index digest>", "label": "..."}`.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("k".into(), Value::String(hex(&self.index)));
        if let Some(label) = &self.label {
            map.insert("label".into(), Value::String(label.clone()));
        }
        if let Some(handle) = self.handle {
            map.insert("h".into(), Value::String(handle.to_string()));
        }
        Value::Object(map)
    }

    /// Reads what [`to_value`](Self::to_value) wrote; `None` is no binding.
    ///
    /// # Errors
    /// [`UserDecodeError`] for any other shape.
    pub fn from_value(value: Option<&Value>) -> Result<Option<Self>, UserDecodeError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let Value::Object(map) = value else {
            return Err(UserDecodeError);
        };
        let id = map.get("id").and_then(Value::as_str).ok_or(UserDecodeError)?;
        if id.is_empty() || id.len() > MAX_USER_ID_LEN {
            return Err(UserDecodeError);
        }
        let index = map
            .get("k")
            .and_then(Value::as_str)
            .and_then(unhex)
            .ok_or(UserDecodeError)?;
        let label = match map.get("label") {
            None => None,
            Some(Value::String(label)) if label.len() <= MAX_LABEL_LEN => Some(label.clone()),
            Some(_) => return Err(UserDecodeError),
        };
        let handle = match map.get("h") {
            None => None,
            Some(Value::String(text)) => Some(SessionHandle::parse(text).ok_or(UserDecodeError)?),
            Some(_) => return Err(UserDecodeError),
        };
        if map.len() != 2 + usize::from(label.is_some()) + usize::from(handle.is_some()) {
            return Err(UserDecodeError);
        }
        Ok(Some(UserBinding {
            id: id.to_owned(),
            label,
            index,
            handle,
        }))
    }
}

impl fmt::Debug for UserBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // User ids are personal data: logs get their length, not the id.
        f.debug_struct("UserBinding")
            .field("id_len", &self.id.len())
            .field("label", &self.label.as_ref().map(|_| "<set>"))
            .field("handle", &self.handle.map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Why a stored user binding is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's stored user binding is malformed")]
#[non_exhaustive]
pub struct UserDecodeError;

/// The key of one user's index of sessions of one named session, in one app
/// namespace: `SHA-256("sessionkit/user" | namespace | session | user id)`. Stores key
/// their per-user indexes by it, so they hold user ids only inside records.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey {
    namespace: Namespace,
    digest: [u8; 32],
}

impl UserKey {
    /// The index key of `user`'s sessions of `session` in `namespace`.
    pub fn new(namespace: &Namespace, session: &SessionName, user: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"sessionkit/user\0");
        for part in [namespace.as_str(), session.as_str(), user] {
            hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hash.update(part.as_bytes());
        }
        UserKey {
            namespace: namespace.clone(),
            digest: hash.finalize().into(),
        }
    }

    /// The index of the user a record is bound to, if any (in the namespace of the
    /// record's store key). A malformed binding is none.
    pub fn of_record(key: &StoreKey, record: &Record) -> Option<Self> {
        UserBinding::from_value(record.data.get(USER_KEY))
            .ok()
            .flatten()
            .map(|binding| binding.index_key(key.namespace()))
    }

    /// What a patch does to the record's binding: `None` leaves it, `Some(Some(user))`
    /// binds the record to `user`, `Some(None)` unbinds it (a clear without a new
    /// binding cannot happen: `clear` keeps the binding).
    pub fn of_patch(key: &StoreKey, patch: &Patch) -> Option<Option<Self>> {
        if let Some(value) = patch.set.get(USER_KEY) {
            return Some(
                UserBinding::from_value(Some(value))
                    .ok()
                    .flatten()
                    .map(|binding| binding.index_key(key.namespace())),
            );
        }
        (patch.clear || patch.remove.iter().any(|k| k == USER_KEY)).then_some(None)
    }

    /// Rebuilds a key from its parts (drivers reading keys back, tests).
    pub fn from_digest(namespace: Namespace, digest: [u8; 32]) -> Self {
        UserKey { namespace, digest }
    }

    /// The app namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The 32-byte digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UserKey({}:{:02x}{:02x}{:02x}{:02x})",
            self.namespace, self.digest[0], self.digest[1], self.digest[2], self.digest[3]
        )
    }
}

/// The public name of one session in a user's list (22 URL-safe characters). It is a
/// one-way hash of the store key, so it can never be used as a cookie or a store key,
/// and it only means something to the session's own user: ending a session by handle
/// looks it up among that user's sessions.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHandle([u8; 16]);

impl SessionHandle {
    /// A random handle (a cookie session's, which has no store key).
    pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut handle = [0u8; 16];
        rng.fill_bytes(&mut handle);
        SessionHandle(handle)
    }

    /// The handle of the session stored under `key`.
    pub fn of(key: &StoreKey) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"sessionkit/handle\0");
        hash.update(key.namespace().as_str().as_bytes());
        hash.update(b"\0");
        hash.update(key.digest());
        let digest: [u8; 32] = hash.finalize().into();
        let mut handle = [0u8; 16];
        handle.copy_from_slice(&digest[..16]);
        SessionHandle(handle)
    }

    /// Parses the text form; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 22 {
            return None;
        }
        let bytes = B64.decode(text).ok()?;
        let handle: [u8; 16] = bytes.try_into().ok()?;
        // Only the canonical encoding (the last character carries 2 spare bits).
        let parsed = SessionHandle(handle);
        (parsed.to_string() == text).then_some(parsed)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&B64.encode(self.0))
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({self})")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bindings_round_trip_and_refuse_other_shapes() {
        let ns = Namespace::new("app").expect("valid");
        let web = SessionName::new("web").expect("valid");
        let mut binding = UserBinding::new(&ns, &web, "ada").expect("valid");
        assert_eq!(binding.index_key(&ns), UserKey::new(&ns, &web, "ada"));
        assert_eq!(
            UserBinding::from_value(Some(&binding.to_value())),
            Ok(Some(binding.clone()))
        );
        binding.set_label(&"é".repeat(150));
        assert!(binding.label().expect("set").len() <= MAX_LABEL_LEN);
        assert_eq!(
            UserBinding::from_value(Some(&binding.to_value())),
            Ok(Some(binding.clone()))
        );
        assert_eq!(UserBinding::from_value(None), Ok(None));
        for bad in [
            json!("ada"),
            json!({}),
            json!({"id": ""}),
            json!({"id": 1}),
            json!({"id": "ada", "label": 2}),
            json!({"id": "ada", "x": "y"}),
            json!({"id": "ada", "label": "l", "x": "y"}),
            json!({"id": "x".repeat(MAX_USER_ID_LEN + 1), "k": "0".repeat(64)}),
            json!({"id": "ada", "k": "0".repeat(63)}),
            json!({"id": "ada", "k": "G".repeat(64)}),
            json!({"id": "ada", "k": "0".repeat(64), "x": 1}),
        ] {
            assert_eq!(UserBinding::from_value(Some(&bad)), Err(UserDecodeError), "{bad}");
        }
        assert!(UserBinding::new(&ns, &web, "").is_err());
        let ok = json!({"id": "ada", "k": "0a".repeat(32)});
        assert!(UserBinding::from_value(Some(&ok)).expect("valid").is_some());
        assert!(!format!("{binding:?}").contains("ada"));
    }

    #[test]
    fn user_keys_separate_namespaces_sessions_and_users() {
        let ns = Namespace::new("app").expect("valid");
        let web = SessionName::new("web").expect("valid");
        let admin = SessionName::new("admin").expect("valid");
        let key = UserKey::new(&ns, &web, "ada");
        assert_eq!(key, UserKey::new(&ns, &web, "ada"));
        assert_ne!(key, UserKey::new(&ns, &admin, "ada"));
        assert_ne!(key, UserKey::new(&ns, &web, "bob"));
        assert_ne!(
            key,
            UserKey::new(&Namespace::new("other").expect("valid"), &web, "ada")
        );
        // Length prefixes: no two splits of the same bytes collide.
        assert_ne!(
            UserKey::new(&ns, &SessionName::new("a").expect("valid"), "bc"),
            UserKey::new(&ns, &SessionName::new("ab").expect("valid"), "c")
        );
    }

    #[test]
    fn handles_are_one_way_and_parse_canonically() {
        let key = StoreKey::from_digest(Namespace::new("app").expect("valid"), [7; 32]);
        let handle = SessionHandle::of(&key);
        let text = handle.to_string();
        assert_eq!(text.len(), 22);
        assert_eq!(SessionHandle::parse(&text), Some(handle));
        assert_ne!(text.as_bytes(), &key.digest()[..22]);
        for bad in ["", "short", &format!("{text}A"), "!!!!!!!!!!!!!!!!!!!!!!"] {
            assert_eq!(SessionHandle::parse(bad), None, "{bad}");
        }
        let mut last = text.clone();
        last.pop();
        last.push(if text.ends_with('B') { 'C' } else { 'B' });
        if let Some(other) = SessionHandle::parse(&last) {
            assert_ne!(other, handle);
        }
    }
}
