//! Revocation of sealed cookie sessions.
//!
//! A sealed cookie carries its whole session, so without server state a copied cookie
//! stays valid until it expires, whatever the user did meanwhile. A cookie session that
//! is bound to a user (`set_user`) is therefore checked against one small record per
//! user, the *revocation record*, kept by any driver (the registry's memory driver by
//! default, a shared one across machines):
//!
//! | key in the record | meaning |
//! |---|---|
//! | `nvb` | "not valid before": sessions of this user created earlier are revoked ("log out everywhere") |
//! | `r:<handle>` | this session is revoked (logout, "end this device"); the value is until when its cookie could live |
//! | `s:<handle>` | this session was signed in: `{"created", "label", "until"}`, for the user's list |
//!
//! The record lives under [`revocation_key`], a one-way function of the user's index
//! key, and is written with ordinary per-key patches, so concurrent logouts of one user
//! all land. Checking costs one load of that record per request of a bound cookie
//! session, nothing for anonymous ones; a session opts out with `revocation = false`
//! (fully stateless, and then a copied cookie lives until it expires).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::expiry::{ExpiryPolicy, IDLE_ONLY_COOKIE_AGE};
use crate::id::StoreKey;
use crate::record::{Patch, Record};
use crate::time::Timestamp;
use crate::user::{SessionHandle, UserKey};

/// Where the revocation record of the user of `user` lives: the user's index digest
/// with every byte flipped by a fixed mask. The index digest is already a hash, so no
/// second hash is needed (this runs on every request of a bound cookie session), and a
/// session key (`SHA-256(id)`) or an index key equal to it cannot be found.
pub fn revocation_key(user: &UserKey) -> StoreKey {
    let mut digest = *user.digest();
    for byte in &mut digest {
        *byte ^= 0x5a;
    }
    StoreKey::from_digest(user.namespace().clone(), digest)
}

/// Whether a revocation record revokes session `handle`, created at `created`: the
/// check every request of a bound cookie session makes, reading two keys of the record
/// rather than all of it.
pub fn revokes(record: &Record, handle: SessionHandle, created: Timestamp) -> bool {
    let before = record
        .data
        .get(NVB)
        .and_then(Value::as_u64)
        .is_some_and(|nvb| created < Timestamp::from_millis(nvb));
    before || record.data.contains_key(&format!("{REVOKED}{handle}"))
}

/// Until when a revocation record written at `now` must be kept: the longest any cookie
/// of the session could still live (its `ttl`, or [`IDLE_ONLY_COOKIE_AGE`] for an
/// idle-only session).
pub fn horizon(expiry: &ExpiryPolicy, now: Timestamp) -> Timestamp {
    now.saturating_add(expiry.ttl().unwrap_or(IDLE_ONLY_COOKIE_AGE))
}

/// One signed-in cookie session, as its user's revocation record lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedIn {
    /// Its handle.
    pub handle: SessionHandle,
    /// When it signed in.
    pub created: Timestamp,
    /// Its label.
    pub label: Option<String>,
    /// Until when its cookie could live.
    pub until: Timestamp,
}

/// A user's revocation record, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    not_valid_before: Option<Timestamp>,
    revoked: BTreeMap<String, Timestamp>,
    signed_in: Vec<SignedIn>,
}

const NVB: &str = "nvb";
const REVOKED: &str = "r:";
const SIGNED_IN: &str = "s:";

impl Revocations {
    /// Reads a revocation record. Entries that do not parse are ignored (a record is
    /// only ever written by sessionkit; ignoring never revives a revoked session,
    /// because a missing `nvb` or `r:` entry is read as "revoked" only when present).
    pub fn from_record(record: &Record) -> Self {
        let mut out = Revocations::default();
        for (key, value) in &record.data {
            if key == NVB {
                out.not_valid_before = value.as_u64().map(Timestamp::from_millis);
            } else if let Some(handle) = key.strip_prefix(REVOKED) {
                if let Some(until) = value.as_u64() {
                    out.revoked
                        .insert(handle.to_owned(), Timestamp::from_millis(until));
                }
            } else if let Some(handle) = key.strip_prefix(SIGNED_IN)
                && let Some(handle) = SessionHandle::parse(handle)
                && let Value::Object(entry) = value
                && let (Some(created), Some(until)) = (
                    entry.get("created").and_then(Value::as_u64),
                    entry.get("until").and_then(Value::as_u64),
                )
            {
                out.signed_in.push(SignedIn {
                    handle,
                    created: Timestamp::from_millis(created),
                    label: entry.get("label").and_then(Value::as_str).map(str::to_owned),
                    until: Timestamp::from_millis(until),
                });
            }
        }
        out.signed_in.sort_by_key(|s| s.created);
        out
    }

    /// Whether the session `handle`, created at `created`, is revoked: listed as revoked,
    /// or created before the user's "not valid before".
    pub fn is_revoked(&self, handle: SessionHandle, created: Timestamp) -> bool {
        // Strictly before: a sign-in in the same request as "log out everywhere" (a
        // password change that keeps this device) stays valid. Sessions signed in
        // within that same millisecond but earlier are listed, and "log out
        // everywhere" also revokes every listed session by handle.
        self.not_valid_before.is_some_and(|nvb| created < nvb)
            || self.revoked.contains_key(&handle.to_string())
    }

    /// The signed-in sessions that are neither revoked nor past `now`, oldest first.
    pub fn signed_in(&self, now: Timestamp) -> Vec<SignedIn> {
        self.signed_in
            .iter()
            .filter(|s| s.until > now && !self.is_revoked(s.handle, s.created))
            .cloned()
            .collect()
    }
}

/// The patch that revokes session `handle` (its cookie could live until `until`).
pub fn revoke(handle: SessionHandle, until: Timestamp, now: Timestamp) -> Patch {
    let mut patch = Patch {
        last_seen: now,
        ..Patch::default()
    };
    patch
        .set
        .insert(format!("{REVOKED}{handle}"), Value::from(until.as_millis()));
    patch.remove.push(format!("{SIGNED_IN}{handle}"));
    patch
}

/// The patch that revokes every session of the user created before `now`.
pub fn revoke_all(now: Timestamp) -> Patch {
    let mut patch = Patch {
        last_seen: now,
        ..Patch::default()
    };
    patch.set.insert(NVB.to_owned(), Value::from(now.as_millis()));
    patch
}

/// The patch that lists a newly signed-in session.
pub fn register(session: &SignedIn, now: Timestamp) -> Patch {
    let mut entry = Map::new();
    entry.insert("created".into(), Value::from(session.created.as_millis()));
    entry.insert("until".into(), Value::from(session.until.as_millis()));
    if let Some(label) = &session.label {
        entry.insert("label".into(), json!(label));
    }
    let mut patch = Patch {
        last_seen: now,
        ..Patch::default()
    };
    patch
        .set
        .insert(format!("{SIGNED_IN}{}", session.handle), Value::Object(entry));
    patch
}

/// A write to a revocation record: applied as a patch, or, when the record does not
/// exist yet, created from the patch's keys.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a plain carrier of the three things every caller applies"
)]
pub struct RevocationWrite {
    /// The user's revocation record.
    pub key: StoreKey,
    /// The change.
    pub patch: Patch,
    /// Until when the record must be kept (the longest a cookie of the user could
    /// still live).
    pub expires_at: Timestamp,
}

impl RevocationWrite {
    /// The record to create when the patch found none.
    pub fn initial_record(&self) -> Record {
        let mut record = Record::new(self.patch.last_seen, Map::new());
        self.patch.apply_to(&mut record);
        record
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::def::SessionName;
    use crate::id::Namespace;

    #[test]
    fn revocations_read_back_from_their_patches() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (a, b, c) = (
            SessionHandle::random(&mut rng),
            SessionHandle::random(&mut rng),
            SessionHandle::random(&mut rng),
        );
        let at = Timestamp::from_millis;
        let mut record = Record::new(at(0), Map::new());
        for (handle, created) in [(a, 10), (b, 20), (c, 30)] {
            register(
                &SignedIn {
                    handle,
                    created: at(created),
                    label: Some(format!("device {created}")),
                    until: at(1000),
                },
                at(created),
            )
            .apply_to(&mut record);
        }
        let read = Revocations::from_record(&record);
        assert_eq!(read.signed_in(at(40)).len(), 3);
        assert!(read.signed_in(at(1000)).is_empty(), "past their cookies' life");
        revoke(b, at(1000), at(40)).apply_to(&mut record);
        let read = Revocations::from_record(&record);
        assert!(read.is_revoked(b, at(20)) && !read.is_revoked(a, at(10)));
        assert_eq!(
            read.signed_in(at(40))
                .iter()
                .map(|s| s.handle)
                .collect::<Vec<_>>(),
            [a, c]
        );
        revoke_all(at(25)).apply_to(&mut record);
        let read = Revocations::from_record(&record);
        assert!(read.is_revoked(a, at(10)) && !read.is_revoked(c, at(30)));
        for (handle, created) in [(a, 10), (b, 20), (c, 30), (a, 26)] {
            assert_eq!(
                revokes(&record, handle, at(created)),
                read.is_revoked(handle, at(created)),
                "the request-path check agrees with the full read"
            );
        }
        assert!(
            !read.is_revoked(SessionHandle::random(&mut rng), at(25)),
            "created at nvb is valid"
        );
        assert_eq!(read.signed_in(at(40)).len(), 1);
    }

    #[test]
    fn keys_are_one_way_and_per_user() {
        let ns = Namespace::new("app").expect("valid");
        let web = SessionName::new("web").expect("valid");
        let ada = UserKey::new(&ns, &web, "ada");
        let key = revocation_key(&ada);
        assert_ne!(key.digest(), ada.digest());
        assert_ne!(key, revocation_key(&UserKey::new(&ns, &web, "bob")));
        let write = RevocationWrite {
            key,
            patch: revoke_all(Timestamp::from_millis(5)),
            expires_at: Timestamp::from_millis(10),
        };
        assert_eq!(
            Revocations::from_record(&write.initial_record()).not_valid_before,
            Some(Timestamp::from_millis(5))
        );
    }
}
