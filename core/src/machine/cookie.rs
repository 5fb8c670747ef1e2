//! The rules of cookie sessions: the whole record is sealed into the cookie, nothing
//! is stored.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

use rand_core::CryptoRng;

use super::{Live, State};
use crate::codec::{self, ChunkedSealError, Opened, Rejection, SealedRecord};
use crate::cookies::{self, ChunkSlot, CookieSettings, MAX_COOKIE_CHUNKS, MAX_SET_COOKIE_LEN, SetCookie};
use crate::def::SessionSpec;
use crate::keys::KeyUse;
use crate::machine::output::{Event, FinishError, Outcome};
use crate::machine::{LIFETIME_KEY, USER_KEY};
use crate::record::Record;
use crate::revocation::{self, RevocationWrite, SignedIn, revocation_key};
use crate::time::Timestamp;
use crate::user::SessionHandle;

/// Opens one cookie value: a valid seal gives the session at once (a fresh one, with an
/// event, when its authenticated timestamps say it expired).
pub(super) fn accept(
    spec: &SessionSpec,
    value: &str,
    now: Timestamp,
    events: &mut VecDeque<Event>,
) -> Result<State, Rejection> {
    let opened = codec::open(spec.seal_keys(), value)?;
    accept_opened(spec, opened, now, events)
}

/// Opens the cookies of a chunked session (`cookie_chunks` above 1): each value of the
/// session's own cookie in turn, a single sealed value or chunk 0 of a set whose other
/// chunks are the request's `name.1`, `name.2`, ... Returns the state, whether the
/// session's own cookie was present and which chunk cookies were (bit `k` for `name.k`).
/// Anything but one whole authentic set is an anonymous request with
/// [`Event::CookieRejected`].
pub(super) fn accept_chunked<'h, I>(
    spec: &SessionSpec,
    headers: I,
    now: Timestamp,
    events: &mut VecDeque<Event>,
) -> (State, bool, u8)
where
    I: IntoIterator<Item = &'h [u8]>,
{
    let values = cookies::chunked_values(headers, &spec.def().cookie.name);
    let present = (!values.base.is_empty(), values.present());
    let mut first_rejection = None;
    for value in &values.base {
        let opened = codec::open_chunked(spec.seal_keys(), value, &values.chunks, spec.def().cookie_chunks);
        match opened.and_then(|opened| accept_opened(spec, opened, now, events)) {
            Ok(state) => return (state, present.0, present.1),
            Err(reason) => {
                first_rejection.get_or_insert(reason);
            }
        }
    }
    // Chunks without the session's own cookie: a set that lost its first chunk.
    if values.base.is_empty() && values.chunks.iter().any(|slot| *slot != ChunkSlot::Absent) {
        first_rejection = Some(Rejection::ChunkSet);
    }
    if let Some(reason) = first_rejection {
        events.push_back(Event::CookieRejected { reason });
    }
    (State::Ready(Live::new_session()), present.0, present.1)
}

/// The session an authentic sealed record gives: the record, or a fresh session (with
/// an event) when its authenticated timestamps say it expired.
///
/// # Errors
/// [`Rejection::Corrupt`] when its lifetime or user binding is malformed.
fn accept_opened(
    spec: &SessionSpec,
    opened: Opened,
    now: Timestamp,
    events: &mut VecDeque<Event>,
) -> Result<State, Rejection> {
    let SealedRecord {
        created_at,
        last_seen,
        data,
    } = opened.record;
    // Sealed, so only this app wrote it; a malformed one is refused all the same.
    let (life, user) = super::own_metadata(&data).ok_or(Rejection::Corrupt)?;
    let deadlines = spec.def().expiry.deadlines(created_at, last_seen, &life);
    let live = match deadlines.check(now) {
        Some(by) => {
            events.push_back(Event::Expired { session: None, by });
            Live::new_session()
        }
        None => Live::existing(
            None,
            super::Original::Owned(Record {
                created_at,
                last_seen,
                data,
            }),
            (life, user),
            opened.key == KeyUse::Previous,
        ),
    };
    // A bound session is checked against its user's revocation record first.
    if spec.checks_revocation()
        && let Some(user) = &live.user
        && user.handle().is_some()
    {
        let key = revocation_key(&user.index_key(spec.store_namespace()));
        return Ok(State::Checking {
            live: Box::new(live),
            key,
        });
    }
    Ok(State::Ready(live))
}

/// The revocation writes a finished cookie session needs: revoke the cookie of a bound
/// session that was destroyed; list a session newly bound to a user.
fn revocation_writes(
    spec: &SessionSpec,
    live: &Live,
    now: Timestamp,
    created: Timestamp,
    outcome: &mut Outcome,
) {
    if !spec.checks_revocation() {
        return;
    }
    let expiry = &spec.def().expiry;
    let record_until = revocation::horizon(expiry, now);
    if let Some((user, created_at, life)) = live.revoke.as_deref()
        && let Some(handle) = user.handle()
    {
        // A copy of the cookie lives at most until its absolute deadline, or an idle
        // timeout from now.
        let until = expiry.deadlines(*created_at, now, life).expires_at();
        outcome.revocations.push(RevocationWrite {
            key: revocation_key(&user.index_key(spec.store_namespace())),
            patch: revocation::revoke(handle, until, now),
            expires_at: record_until,
        });
    }
    if live.user_changed
        && let Some(user) = &live.user
        && let Some(handle) = user.handle()
    {
        let until = expiry
            .deadlines(created, now, &live.life)
            .absolute
            .unwrap_or(record_until);
        let signed_in = SignedIn {
            handle,
            created,
            label: user.label().map(str::to_owned),
            until,
        };
        outcome.revocations.push(RevocationWrite {
            key: revocation_key(&user.index_key(spec.store_namespace())),
            patch: revocation::register(&signed_in, now),
            expires_at: record_until,
        });
    }
}

/// Decides the cookie of a cookie session: reseal on a change, a regenerate, a due
/// touch or a key rotation; remove it on destroy. `present` says whether the request
/// carried the session's own cookie and which chunk cookies (bit `k` for `name.k`);
/// chunk cookies the new value does not use are removed.
pub(super) fn finish<R: CryptoRng + ?Sized>(
    spec: &SessionSpec,
    mut live: Live,
    (cookie_present, chunks_present): (bool, u8),
    now: Timestamp,
    rng: &mut R,
    outcome: &mut Outcome,
) -> Result<(), FinishError> {
    let expiry = &spec.def().expiry;
    if live.destroyed {
        outcome.events.push(Event::Destroyed { session: None });
    }
    // A newly bound session gets its own random handle: its name in the user's list
    // and in revocations, kept in the sealed binding from then on.
    if live.user_changed
        && let Some(user) = &mut live.user
        && user.handle().is_none()
    {
        user.set_handle(SessionHandle::random(rng));
        let value = user.to_value();
        live.delta.set(USER_KEY.to_owned(), value);
    }
    if live.user_changed {
        outcome.bound_user.clone_from(&live.user);
    }
    let live = &live;
    let mut live_life = live.life;
    let (created, reseal) = if live.is_new {
        (now, super::server::has_content(live))
    } else {
        let created = live.original.created_at;
        let due = expiry.touch_due_for(live.original.last_seen, now, &live.life);
        // A cookie session has no id to renew: renewal re-seals it (fresh salt and
        // nonce, the primary key). The old cookie stays valid until it expires, as any
        // sealed cookie does without a revocation store.
        let renew = expiry.renew_due(live.life.id_issued().unwrap_or(created), now);
        if renew || live.regenerate {
            live_life.set_id_issued(now);
        }
        (
            created,
            live.delta.changes(&live.original.data) || live.regenerate || due || live.reissue || renew,
        )
    };
    if !reseal {
        if live.destroyed {
            if cookie_present {
                outcome.set_cookie = Some(spec.def().cookie.render_removal());
            }
            remove_stale_chunks(&spec.def().cookie, chunks_present, 1, outcome);
        }
        revocation_writes(spec, live, now, created, outcome);
        return Ok(());
    }
    let deadlines = expiry.deadlines(created, now, &live_life);
    let expires_at = deadlines.expires_at();
    if expires_at <= now {
        return Ok(());
    }
    let mut data = live.delta.view(&live.original.data);
    if !live_life.is_default() {
        data.insert(LIFETIME_KEY.to_owned(), live_life.to_value());
    }
    let record = SealedRecord {
        created_at: created,
        last_seen: now,
        data,
    };
    let value = codec::seal(spec.seal_keys(), &record, rng).map_err(|source| FinishError::Seal {
        session: spec.name().clone(),
        source,
    })?;
    let settings = &spec.def().cookie;
    // A sealed cookie is re-sealed whenever its idle deadline moves, so its Max-Age
    // can be the session's next expiry (a signed id cookie's is the absolute one).
    let max_age = live_life
        .persistent_or(settings.persistent)
        .then(|| expires_at.saturating_since(now));
    let (cookie, chunks) = render(spec, settings, (&value, &record), max_age, rng)?;
    if live.is_new {
        outcome.events.push(Event::Created { session: None });
    }
    if live.reissue && !live.is_new {
        outcome.events.push(Event::Reissued { session: None });
    }
    let count = chunks.len() + 1;
    outcome.set_cookie = Some(cookie);
    outcome.more_cookies = chunks;
    remove_stale_chunks(&spec.def().cookie, chunks_present, count, outcome);
    revocation_writes(spec, live, now, created, outcome);
    Ok(())
}

/// The Set-Cookie lines of a sealed `value` (of `record`): one line when it fits, else,
/// when the session allows chunks, the lines of a chunked seal of `record`, chunk 0
/// first and the others after it. Every line is rendered by `settings.for_chunk`, so
/// all share the attributes, and every line is at most 4096 bytes.
fn render<R: CryptoRng + ?Sized>(
    spec: &SessionSpec,
    settings: &CookieSettings,
    (value, record): (&str, &SealedRecord),
    max_age: Option<Duration>,
    rng: &mut R,
) -> Result<(SetCookie, Vec<SetCookie>), FinishError> {
    let too_large = |source| FinishError::CookieTooLarge {
        session: spec.name().clone(),
        source,
    };
    let max_chunks = spec.def().cookie_chunks;
    match settings.render_cookie(value, max_age) {
        Ok(cookie) => return Ok((cookie, Vec::new())),
        Err(source) if max_chunks <= 1 => return Err(too_large(source)),
        Err(_) => {}
    }
    let chunk_settings: Vec<Cow<'_, CookieSettings>> = (0..usize::from(max_chunks))
        .map(|index| settings.for_chunk(index))
        .collect();
    // What a chunk's line takes besides its value: the same line with an empty value.
    let capacity = |index: usize| {
        chunk_settings
            .get(index)
            .and_then(|chunk| chunk.render_cookie("", max_age).ok())
            .map_or(0, |empty| MAX_SET_COOKIE_LEN.saturating_sub(empty.as_str().len()))
    };
    let values =
        codec::seal_chunked(spec.seal_keys(), record, rng, max_chunks, capacity).map_err(
            |err| match err {
                ChunkedSealError::TooLarge { size } => FinishError::TooManyChunks {
                    session: spec.name().clone(),
                    size,
                    max: max_chunks,
                },
                ChunkedSealError::Seal(source) => FinishError::Seal {
                    session: spec.name().clone(),
                    source,
                },
            },
        )?;
    let lines = values
        .iter()
        .zip(&chunk_settings)
        .map(|(value, chunk)| chunk.render_cookie(value, max_age).map_err(too_large))
        .collect::<Result<Vec<_>, _>>()?;
    let mut lines = lines.into_iter();
    match lines.next() {
        Some(first) => Ok((first, lines.collect())),
        // `seal_chunked` returns at least one value.
        None => Err(FinishError::TooManyChunks {
            session: spec.name().clone(),
            size: value.len(),
            max: max_chunks,
        }),
    }
}

/// Removes the chunk cookies `name.k` with `k >= from` that the request carried (bit `k`
/// of `present`), with the attributes they were set with.
fn remove_stale_chunks(settings: &CookieSettings, present: u8, from: usize, outcome: &mut Outcome) {
    for index in from.max(1)..usize::from(MAX_COOKIE_CHUNKS) {
        if present & (1 << index) != 0 {
            outcome
                .more_cookies
                .push(settings.for_chunk(index).render_removal());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::expiry::ExpiredBy;
    use crate::machine::SessionMachine;
    use crate::machine::tests::{T0, cookie_pair, rng, spec};

    #[test]
    fn a_sealed_record_is_ready_at_once() {
        let mut first = SessionMachine::begin(spec(true), [], T0);
        first.insert("user", "ada").expect("ready");
        let outcome = first.finish(200, T0, &mut rng()).expect("finishes");
        assert!(outcome.write().is_none(), "cookie sessions never write a store");
        assert_eq!(outcome.events(), [Event::Created { session: None }]);
        let cookie = cookie_pair(&outcome);
        assert!(!cookie.contains("ada"));

        let next = SessionMachine::begin(spec(true), [cookie.as_bytes()], T0);
        assert!(next.load_request().is_none());
        assert!(!next.is_new().expect("ready"));
        assert_eq!(next.get::<String>("user").expect("ready").as_deref(), Some("ada"));
        assert!(next.finish(200, T0, &mut rng()).expect("finishes").is_noop());
    }

    #[test]
    fn an_expired_seal_gives_a_fresh_session() {
        let mut first = SessionMachine::begin(spec(true), [], T0);
        first.insert("user", "ada").expect("ready");
        let outcome = first.finish(200, T0, &mut rng()).expect("finishes");
        let cookie = cookie_pair(&outcome);
        let later = T0.saturating_add(Duration::from_hours(1));
        let mut next = SessionMachine::begin(spec(true), [cookie.as_bytes()], later);
        assert!(next.is_new().expect("ready"));
        assert_eq!(
            next.poll_event(),
            Some(Event::Expired {
                session: None,
                by: ExpiredBy::Idle
            })
        );
    }

    #[test]
    fn destroy_removes_a_presented_cookie() {
        let mut first = SessionMachine::begin(spec(true), [], T0);
        first.insert("user", "ada").expect("ready");
        let cookie = cookie_pair(&first.finish(200, T0, &mut rng()).expect("finishes"));
        let mut next = SessionMachine::begin(spec(true), [cookie.as_bytes()], T0);
        next.destroy().expect("ready");
        let outcome = next.finish(200, T0, &mut rng()).expect("finishes");
        assert_eq!(outcome.events(), [Event::Destroyed { session: None }]);
        let removal = outcome.set_cookie(crate::WriteResult::Applied).expect("removal");
        assert!(removal.as_str().contains("Max-Age=0"), "{}", removal.as_str());
    }
}
