//! What the machine tells its caller: load answers it takes, and the writes, cookies,
//! events and errors a finished request gives.

use crate::codec::{Rejection, SealError};
use crate::cookies::{SetCookie, SetCookieTooLarge};
use crate::def::{ClearSiteData, SessionName};
use crate::expiry::ExpiredBy;
use crate::id::{Fingerprint, StoreKey};
use crate::record::{Patch, Record, Rotation};
use crate::revocation::RevocationWrite;
use crate::time::Timestamp;
use crate::user::UserBinding;

/// What the store returned for a load request.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: a lookup finds a record, nothing, or bytes that do not decode"
)]
pub enum LoadResult {
    /// The record (the driver has already dropped expired ones; the core checks again).
    Found(Record),
    /// No record under that key.
    Missing,
    /// Something was stored but could not be decoded. Treated as missing and reported
    /// as [`Event::CorruptRecord`]; never an error.
    Corrupt,
}

/// The store write a finished request needs. Every variant carries the absolute instant
/// at which the store may forget the record.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "every caller must carry out every write: a new kind must break callers at compile time, not fall into a wildcard arm"
)]
pub enum Write {
    /// Insert a new record; must not overwrite an existing one.
    Create {
        /// Where.
        key: StoreKey,
        /// What.
        record: Record,
        /// Until when.
        expires_at: Timestamp,
    },
    /// Apply a per-key patch, only if the record still exists.
    Patch {
        /// Where.
        key: StoreKey,
        /// The change.
        patch: Patch,
        /// The new expiry.
        expires_at: Timestamp,
    },
    /// Move last-seen (an idle refresh), only if the record still exists.
    Touch {
        /// Where.
        key: StoreKey,
        /// The new last-seen.
        last_seen: Timestamp,
        /// The new expiry.
        expires_at: Timestamp,
    },
    /// Renew the id: move the record to a new key with this request's changes, the
    /// old key forwarding to it for a grace window; only if the old record still
    /// exists. See [`Rotation`].
    Rotate(Rotation),
}

impl Write {
    /// The key written (for a rotation, the old key, whose record must still exist).
    pub fn key(&self) -> &StoreKey {
        match self {
            Write::Create { key, .. } | Write::Patch { key, .. } | Write::Touch { key, .. } => key,
            Write::Rotate(rotation) => &rotation.from,
        }
    }

    /// Whether the write is conditional on the record still existing (patch, touch,
    /// rotate), so that [`WriteResult::Gone`] can answer it.
    pub fn is_conditional(&self) -> bool {
        !matches!(self, Write::Create { .. })
    }

    /// The per-key changes this write carries, if any (a patch's, or a rotation's).
    pub fn patch(&self) -> Option<&Patch> {
        match self {
            Write::Patch { patch, .. } => Some(patch),
            Write::Rotate(rotation) => Some(&rotation.patch),
            Write::Create { .. } | Write::Touch { .. } => None,
        }
    }
}

/// What the store said about a [`Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: a conditional write either applied or found the record gone"
)]
pub enum WriteResult {
    /// Done.
    Applied,
    /// A patch or touch found no record: the session was destroyed, regenerated or
    /// expired by a concurrent request. Nothing was written, and nothing must be
    /// resurrected.
    Gone,
}

/// Something worth logging. Sessions appear only as [`Fingerprint`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A cookie with the session's name was presented and refused.
    CookieRejected {
        /// Why (of the first refused candidate).
        reason: Rejection,
    },
    /// A presented session had expired.
    Expired {
        /// The session (`None` for cookie sessions, which have no id).
        session: Option<Fingerprint>,
        /// Absolute or idle.
        by: ExpiredBy,
    },
    /// A validly signed id that the store does not know.
    Unknown {
        /// The session.
        session: Fingerprint,
    },
    /// The store held bytes it could not decode under the session's key.
    CorruptRecord {
        /// The session.
        session: Fingerprint,
    },
    /// A new session is created by this response.
    Created {
        /// The new session (`None` for cookie sessions, which have no id).
        session: Option<Fingerprint>,
    },
    /// The session id was replaced.
    Regenerated {
        /// The old id.
        from: Fingerprint,
        /// The new id.
        to: Fingerprint,
    },
    /// The session id was renewed because it was older than `renew_after`; the old id
    /// forwards to the new one for the grace window.
    Renewed {
        /// The old id.
        from: Fingerprint,
        /// The new id.
        to: Fingerprint,
    },
    /// A bound cookie session was presented that its user's revocation record revokes
    /// (it was logged out, ended from another device, or "logged out everywhere").
    Revoked {
        /// Always `None`: cookie sessions have no id.
        session: Option<Fingerprint>,
    },
    /// The session was destroyed.
    Destroyed {
        /// The session.
        session: Option<Fingerprint>,
    },
    /// The cookie was verified with a previous key and is re-issued with the primary.
    Reissued {
        /// The session.
        session: Option<Fingerprint>,
    },
    /// The response was a server error, so the request's changes were dropped.
    ChangesDropped {
        /// The response status.
        status: u16,
    },
}

impl Rejection {
    /// A short, fixed name for the reason (`malformed`, `unsupported_version`,
    /// `unknown_key`, `bad_tag`, `corrupt`, `chunk_set`), for metric labels and log fields. Kept
    /// beside the events that carry a rejection so that a new reason must get a name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::UnsupportedVersion => "unsupported_version",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadTag => "bad_tag",
            Rejection::Corrupt => "corrupt",
            Rejection::ChunkSet => "chunk_set",
        }
    }
}

/// Errors from [`SessionMachine::finish`](crate::SessionMachine::finish). Nothing has been written when one occurs; the
/// response must not go out as a success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinishError {
    /// The session does not fit in a cookie.
    #[error("session `{session}` does not fit in its cookie: {source}")]
    CookieTooLarge {
        /// The session.
        session: SessionName,
        /// The cookie and its size.
        #[source]
        source: SetCookieTooLarge,
    },
    /// The session does not fit in the chunk cookies its `cookie_chunks` allows.
    #[error(
        "session `{session}` does not fit in its cookies: sealed it is {size} bytes, more than {max} cookies of at most {} bytes each hold (cookie_chunks = {max})",
        crate::cookies::MAX_SET_COOKIE_LEN
    )]
    TooManyChunks {
        /// The session.
        session: SessionName,
        /// The length of the sealed value, in bytes.
        size: usize,
        /// The session's `cookie_chunks`.
        max: u8,
    },
    /// The data could not be sealed.
    #[error("session `{session}` could not be sealed")]
    Seal {
        /// The session.
        session: SessionName,
        /// Why.
        #[source]
        source: SealError,
    },
}

/// The events of an outcome: usually none or one, kept without an allocation.
#[derive(Debug, Default)]
pub(super) enum Events {
    #[default]
    None,
    One(Event),
    Many(Vec<Event>),
}

impl Events {
    pub(super) fn push(&mut self, event: Event) {
        *self = match std::mem::take(self) {
            Events::None => Events::One(event),
            Events::One(first) => Events::Many(vec![first, event]),
            Events::Many(mut all) => {
                all.push(event);
                Events::Many(all)
            }
        };
    }

    fn as_slice(&self) -> &[Event] {
        match self {
            Events::None => &[],
            Events::One(event) => std::slice::from_ref(event),
            Events::Many(all) => all,
        }
    }
}

impl FromIterator<Event> for Events {
    fn from_iter<I: IntoIterator<Item = Event>>(events: I) -> Self {
        let mut all = Events::None;
        for event in events {
            all.push(event);
        }
        all
    }
}

/// What a finished request must do, decided entirely from the delta, the status and
/// `now`. Run [`Outcome::write`] first, then [`Outcome::delete`], then send
/// [`Outcome::set_cookies`] with the write's result.
#[derive(Debug, Default)]
#[must_use = "an outcome does nothing until its write, delete and cookie are carried out"]
pub struct Outcome {
    pub(super) write: Option<Write>,
    pub(super) delete: Option<StoreKey>,
    pub(super) set_cookie: Option<SetCookie>,
    /// The other Set-Cookie lines: a chunked session's chunks after the first, and the
    /// removals of stale chunk cookies.
    pub(super) more_cookies: Vec<SetCookie>,
    pub(super) clear_site_data: Option<ClearSiteData>,
    pub(super) events: Events,
    pub(super) bound_user: Option<UserBinding>,
    pub(super) revocations: Vec<RevocationWrite>,
}

impl Outcome {
    /// The store write to run first, if any.
    pub fn write(&self) -> Option<&Write> {
        self.write.as_ref()
    }

    /// The record to delete after the write, if any (regenerate, destroy).
    pub fn delete(&self) -> Option<&StoreKey> {
        self.delete.as_ref()
    }

    /// The Set-Cookie value of the session's own cookie to send once the write returned
    /// `result` (pass [`WriteResult::Applied`] when there was no write). When a patch or
    /// touch found the session gone, no cookie is sent: re-sending the old id could
    /// overwrite the cookie of the request that replaced it.
    ///
    /// A cookie session split over several cookies
    /// ([`SessionDef::cookie_chunks`](crate::SessionDef::cookie_chunks)) needs more than
    /// this one line: send [`set_cookies`](Self::set_cookies), which includes it.
    pub fn set_cookie(&self, result: WriteResult) -> Option<&SetCookie> {
        if self.write_gone(result) {
            None
        } else {
            self.set_cookie.as_ref()
        }
    }

    /// [`set_cookie`](Self::set_cookie), by value.
    pub fn into_set_cookie(self, result: WriteResult) -> Option<SetCookie> {
        if self.write_gone(result) {
            None
        } else {
            self.set_cookie
        }
    }

    /// Every Set-Cookie value to send once the write returned `result`: the session's
    /// own cookie ([`set_cookie`](Self::set_cookie)) first, then, for a chunked cookie
    /// session, its other chunks and the removals of stale chunk cookies. Each is a
    /// `Set-Cookie` header of its own. None when a patch or touch found the session
    /// gone.
    pub fn set_cookies(&self, result: WriteResult) -> impl Iterator<Item = &SetCookie> {
        let gone = self.write_gone(result);
        self.set_cookie
            .iter()
            .chain(&self.more_cookies)
            .filter(move |_| !gone)
    }

    /// [`set_cookies`](Self::set_cookies), by value.
    pub fn into_set_cookies(mut self, result: WriteResult) -> impl Iterator<Item = SetCookie> {
        self.take_set_cookies(result)
    }

    /// [`set_cookies`](Self::set_cookies), moved out of the outcome (which keeps none),
    /// without moving the outcome itself.
    pub fn take_set_cookies(&mut self, result: WriteResult) -> impl Iterator<Item = SetCookie> + use<> {
        let gone = self.write_gone(result);
        self.set_cookie
            .take()
            .into_iter()
            .chain(std::mem::take(&mut self.more_cookies))
            .filter(move |_| !gone)
    }

    /// Whether the request's changes were dropped because its session ended or expired
    /// meanwhile: a patch that found no record (the no-resurrection rule). A touch that
    /// found none drops nothing but the idle refresh.
    pub fn changes_dropped(&self, result: WriteResult) -> bool {
        result == WriteResult::Gone && self.write.as_ref().and_then(Write::patch).is_some()
    }

    fn write_gone(&self, result: WriteResult) -> bool {
        result == WriteResult::Gone && self.write.as_ref().is_some_and(Write::is_conditional)
    }

    /// The `Cache-Control` value the response needs once the write returned `result`:
    /// `no-store` when a cookie is set or cleared, unless the handler set its own.
    pub fn cache_control(&self, result: WriteResult) -> Option<&'static str> {
        self.set_cookies(result).next().map(|_| "no-store")
    }

    /// The `Clear-Site-Data` header value, when the session was destroyed and its
    /// definition asks for one ([`SessionDef::clear_site_data`]).
    ///
    /// [`SessionDef::clear_site_data`]: crate::SessionDef::clear_site_data
    pub fn clear_site_data(&self) -> Option<&str> {
        self.clear_site_data.as_ref().map(ClearSiteData::as_str)
    }

    /// The user this response newly binds its session to (the write stores a binding
    /// it did not have), if any: the session layer then enforces the per-user cap.
    pub fn bound_user(&self) -> Option<&UserBinding> {
        self.bound_user.as_ref()
    }

    /// Writes to revocation records (cookie sessions: a logout revokes the cookie, a
    /// sign-in lists the session), to apply with the session's revocation driver: a
    /// patch, or a create from [`RevocationWrite::initial_record`] when there is no
    /// record yet.
    pub fn revocation_writes(&self) -> &[RevocationWrite] {
        &self.revocations
    }

    /// The key the session lives under once the write is done (the created, patched or
    /// renewed key), if there is a write.
    pub fn session_key(&self) -> Option<&StoreKey> {
        self.write.as_ref().map(|write| match write {
            Write::Rotate(rotation) => &rotation.to,
            other => other.key(),
        })
    }

    /// Events to log.
    pub fn events(&self) -> &[Event] {
        self.events.as_slice()
    }

    /// Whether carrying out the outcome needs the store: a write, a delete, writes to
    /// revocation records, or a new user binding (whose per-user cap the session layer
    /// enforces by listing the user's sessions). Without any, the outcome is only
    /// headers and events, and a session layer can finish the response at once.
    pub fn needs_store(&self) -> bool {
        self.write.is_some()
            || self.delete.is_some()
            || !self.revocations.is_empty()
            || self.bound_user.is_some()
    }

    /// Whether the outcome does nothing at all.
    pub fn is_noop(&self) -> bool {
        self.write.is_none()
            && self.delete.is_none()
            && self.set_cookie.is_none()
            && self.revocations.is_empty()
            && self.more_cookies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookies::CookieSettings;
    use crate::id::Namespace;

    fn key() -> StoreKey {
        StoreKey::from_digest(Namespace::shared(), [7; 32])
    }

    fn cookie() -> SetCookie {
        CookieSettings::new("sid").render_removal()
    }

    fn touch(more_cookies: Vec<SetCookie>) -> Outcome {
        Outcome {
            write: Some(Write::Touch {
                key: key(),
                last_seen: Timestamp::EPOCH,
                expires_at: Timestamp::MAX,
            }),
            set_cookie: Some(cookie()),
            more_cookies,
            ..Outcome::default()
        }
    }

    #[test]
    fn a_gone_patch_or_touch_sends_no_cookie() {
        let touch = touch(Vec::new());
        assert!(touch.set_cookie(WriteResult::Applied).is_some());
        assert_eq!(touch.cache_control(WriteResult::Applied), Some("no-store"));
        assert!(touch.set_cookie(WriteResult::Gone).is_none());
        assert_eq!(touch.cache_control(WriteResult::Gone), None);
        assert!(touch.into_set_cookie(WriteResult::Gone).is_none());
    }

    #[test]
    fn every_line_follows_the_gone_rule() {
        let more = || {
            vec![
                CookieSettings::new("sid.1").render_removal(),
                CookieSettings::new("sid.2").render_removal(),
            ]
        };
        let touch = touch(more());
        let names = |lines: Vec<&SetCookie>| -> Vec<String> {
            lines
                .iter()
                .map(|l| l.as_str().split('=').next().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(
            names(touch.set_cookies(WriteResult::Applied).collect()),
            ["sid", "sid.1", "sid.2"]
        );
        assert_eq!(touch.set_cookies(WriteResult::Gone).count(), 0);
        assert_eq!(touch.into_set_cookies(WriteResult::Gone).count(), 0);
        // Only chunk lines (a destroy that found no own cookie): still a cookie change.
        let chunks_only = Outcome {
            more_cookies: more(),
            ..Outcome::default()
        };
        assert!(!chunks_only.is_noop());
        assert!(chunks_only.set_cookie(WriteResult::Applied).is_none());
        assert_eq!(chunks_only.cache_control(WriteResult::Applied), Some("no-store"));
        assert_eq!(chunks_only.into_set_cookies(WriteResult::Applied).count(), 2);
    }

    #[test]
    fn a_create_keeps_its_cookie_whatever_the_result() {
        let create = Outcome {
            write: Some(Write::Create {
                key: key(),
                record: Record::default(),
                expires_at: Timestamp::MAX,
            }),
            set_cookie: Some(cookie()),
            ..Outcome::default()
        };
        assert_eq!(create.write().map(Write::key), Some(&key()));
        assert!(create.set_cookie(WriteResult::Gone).is_some());
        assert!(!create.is_noop());
        assert!(Outcome::default().is_noop());
    }
}
