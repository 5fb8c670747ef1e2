//! The rules of server-side sessions: the cookie carries a signed id, the record lives
//! in a store.

use std::collections::VecDeque;

use rand_core::CryptoRng;

use super::{Found, Live, State};
use crate::codec::{self, Rejection};
use crate::def::SessionSpec;
use crate::expiry::{Deadlines, ExpiredBy, SessionLifetime};
use crate::id::{SessionId, StoreKey};
use crate::keys::KeyUse;
use crate::machine::LIFETIME_KEY;
use crate::machine::output::{Event, Outcome, Write};
use crate::placement::Group;
use crate::record::{Record, Rotation};
use crate::time::Timestamp;

/// Verifies one cookie value: a validly signed id makes the machine wait for its record.
pub(super) fn accept(spec: &SessionSpec, value: &str) -> Result<State, Rejection> {
    let verified = codec::verify_id(spec.id_keys(), value)?;
    let key = verified.id.store_key(spec.store_namespace());
    Ok(State::Loading {
        id: verified.id,
        key,
        key_use: verified.key,
    })
}

/// What the store's answer for a verified id gives: the live session, or (expired,
/// unknown, corrupt) a fresh one with an event. The presented id is never adopted.
pub(super) fn load(
    spec: &SessionSpec,
    (id, key, key_use): (SessionId, StoreKey, KeyUse),
    result: Found,
    now: Timestamp,
    events: &mut VecDeque<Event>,
) -> Live {
    let session = key.fingerprint();
    match result {
        Found::Record(record) => {
            let Some((life, user)) = super::own_metadata(&record.data) else {
                events.push_back(Event::CorruptRecord { session });
                return Live::new_session();
            };
            let deadlines = spec
                .def()
                .expiry
                .deadlines(record.created_at, record.last_seen, &life);
            match deadlines.check(now) {
                Some(by) => events.push_back(Event::Expired {
                    session: Some(session),
                    by,
                }),
                None => {
                    let reissue = key_use == KeyUse::Previous;
                    return Live::existing(Some((id, key)), record, (life, user), reissue);
                }
            }
        }
        Found::Missing => events.push_back(Event::Unknown { session }),
        Found::Corrupt => events.push_back(Event::CorruptRecord { session }),
    }
    Live::new_session()
}

/// What a store's tombstone for a verified id gives: a fresh session, reported as
/// expired for the reason the session's policy gives for the kept timestamps, or as
/// unknown when the policy says the session would still be live (the lifetimes were
/// lengthened since it was stored, or the session had lifetimes of its own, which a
/// tombstone does not keep).
pub(super) fn load_expired(
    spec: &SessionSpec,
    key: &StoreKey,
    (created_at, last_seen): (Timestamp, Timestamp),
    now: Timestamp,
    events: &mut VecDeque<Event>,
) -> Live {
    let session = key.fingerprint();
    events.push_back(match spec.def().expiry.check(created_at, last_seen, now) {
        Some(by) => Event::Expired {
            session: Some(session),
            by,
        },
        None => Event::Unknown { session },
    });
    Live::new_session()
}

/// Decides the store write and cookie of a server-side session.
pub(super) fn finish<R: CryptoRng + ?Sized>(
    spec: &SessionSpec,
    mut live: Live,
    cookie_present: bool,
    now: Timestamp,
    rng: &mut R,
    outcome: &mut Outcome,
) {
    let expiry = &spec.def().expiry;
    let new_cookie = |id: &SessionId, deadlines: &Deadlines, life: &SessionLifetime| {
        let value = codec::sign_id(spec.id_keys(), id);
        let cookie = &spec.def().cookie;
        let max_age = life
            .persistent_or(cookie.persistent)
            .then(|| deadlines.cookie_max_age(now));
        // A signed id is 92 characters; with the validated attributes the header is far
        // below 4096 bytes, so this cannot fail for any valid configuration.
        cookie.render_cookie(&value, max_age).ok()
    };
    if live.user_changed {
        outcome.bound_user.clone_from(&live.user);
    }
    match live.loaded.take() {
        Some((id, key)) => {
            let created = live.original.created_at;
            let deadlines = expiry.deadlines(created, now, &live.life);
            let expires_at = deadlines.expires_at();
            if expires_at <= now {
                // The absolute lifetime ran out during the request, or the handler set
                // a deadline that has passed: the session is over, so its record goes
                // (the store would not know about a deadline set here).
                outcome.events.push(Event::Expired {
                    session: Some(key.fingerprint()),
                    by: ExpiredBy::Absolute,
                });
                outcome.delete = Some(key);
                return;
            }
            let issued = live.life.id_issued().unwrap_or(created);
            let renew = !live.regenerate && !live.forwarded && expiry.renew_due(issued, now);
            if live.regenerate || renew {
                live.life.set_id_issued(now);
                live.delta.set(LIFETIME_KEY.to_owned(), live.life.to_value());
                // A sharded store wants a renewal's two keys together (the forward and
                // the record are one atomic write), and a bound session beside its
                // user's index (see `Placement`).
                let group = if live.regenerate {
                    user_group(spec, &live)
                } else {
                    Some(spec.placement().group_of_key(&key))
                };
                let (new_id, new_key) = spec.placement().draw(rng, spec.store_namespace(), group);
                let record = Record {
                    created_at: created,
                    last_seen: now,
                    data: live.delta.view(&live.original.data),
                };
                if live.regenerate {
                    outcome.events.push(Event::Regenerated {
                        from: key.fingerprint(),
                        to: new_key.fingerprint(),
                    });
                    outcome.write = Some(Write::Create {
                        key: new_key,
                        record,
                        expires_at,
                    });
                    outcome.delete = Some(key);
                } else {
                    outcome.events.push(Event::Renewed {
                        from: key.fingerprint(),
                        to: new_key.fingerprint(),
                    });
                    // The lifetime key always changed, so there is a patch.
                    let patch = std::mem::take(&mut live.delta)
                        .into_patch(&live.original.data, now)
                        .unwrap_or_default();
                    outcome.write = Some(Write::Rotate(Rotation {
                        from: key,
                        to: new_key,
                        record,
                        patch,
                        expires_at,
                        grace_until: now.saturating_add(expiry.renew_grace()),
                    }));
                }
                outcome.set_cookie = new_cookie(&new_id, &deadlines, &live.life);
                return;
            }
            if let Some(patch) = std::mem::take(&mut live.delta).into_patch(&live.original.data, now) {
                outcome.write = Some(Write::Patch {
                    key: key.clone(),
                    patch,
                    expires_at,
                });
            } else if expiry.touch_due_for(live.original.last_seen, now, &live.life) {
                outcome.write = Some(Write::Touch {
                    key: key.clone(),
                    last_seen: now,
                    expires_at,
                });
            }
            if live.forwarded {
                // The cookie's id is the renewed one; the renewing response sent the
                // new cookie, and this one must not overwrite it.
                return;
            }
            if live.reissue {
                outcome.events.push(Event::Reissued {
                    session: Some(key.fingerprint()),
                });
            }
            if live.reissue || live.cookie_refresh {
                outcome.set_cookie = new_cookie(&id, &deadlines, &live.life);
            }
        }
        None => {
            if live.destroyed {
                outcome.events.push(Event::Destroyed {
                    session: live.destroyed_key.as_ref().map(StoreKey::fingerprint),
                });
                outcome.delete = live.destroyed_key.take();
            }
            let deadlines = expiry.deadlines(now, now, &live.life);
            if has_content(&live) && deadlines.expires_at() > now {
                let (id, key) = spec
                    .placement()
                    .draw(rng, spec.store_namespace(), user_group(spec, &live));
                outcome.events.push(Event::Created {
                    session: Some(key.fingerprint()),
                });
                outcome.write = Some(Write::Create {
                    key,
                    record: Record::new(
                        now,
                        std::mem::take(&mut live.delta).into_view(&live.original.data),
                    ),
                    expires_at: deadlines.expires_at(),
                });
                outcome.set_cookie = new_cookie(&id, &deadlines, &live.life);
            } else if live.destroyed && cookie_present {
                outcome.set_cookie = Some(spec.def().cookie.render_removal());
            }
        }
    }
}

/// The placement group of the index of the user a session is bound to, if it is.
fn user_group(spec: &SessionSpec, live: &Live) -> Option<Group> {
    live.user.as_ref().map(|user| {
        spec.placement()
            .group_of_user(&user.index_key(spec.store_namespace()))
    })
}

/// Whether a new session has anything to store: lifetime choices alone do not create
/// one (a handler may choose them for every visitor).
pub(super) fn has_content(live: &Live) -> bool {
    live.delta.has_key_other_than(&live.original.data, LIFETIME_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::SessionError;
    use crate::machine::SessionMachine;
    use crate::machine::output::{LoadResult, WriteResult};
    use crate::machine::tests::{T0, cookie_pair, rng, spec};

    #[test]
    fn a_signed_id_waits_for_its_record() {
        let mut first = SessionMachine::begin(spec(false), [], T0);
        first.insert("user", "ada").expect("ready");
        let outcome = first.finish(200, T0, &mut rng()).expect("finishes");
        let Some(Write::Create { key, record, .. }) = outcome.write() else {
            panic!("a new session with data is created: {outcome:?}");
        };
        let cookie = cookie_pair(&outcome);

        let mut next = SessionMachine::begin(spec(false), [cookie.as_bytes()], T0);
        assert_eq!(next.load_request(), Some(key));
        assert!(matches!(next.get_value("user"), Err(SessionError::NotLoaded)));
        next.handle_load(LoadResult::Found(record.clone()), T0)
            .expect("requested");
        assert_eq!(next.get::<String>("user").expect("ready").as_deref(), Some("ada"));
        assert!(next.finish(200, T0, &mut rng()).expect("finishes").is_noop());
    }

    #[test]
    fn an_unknown_id_gives_a_fresh_session() {
        let mut first = SessionMachine::begin(spec(false), [], T0);
        first.insert("user", "ada").expect("ready");
        let outcome = first.finish(200, T0, &mut rng()).expect("finishes");
        let cookie = cookie_pair(&outcome);
        let mut next = SessionMachine::begin(spec(false), [cookie.as_bytes()], T0);
        let key = next.load_request().expect("a load").clone();
        next.handle_load(LoadResult::Missing, T0).expect("requested");
        assert!(next.is_new().expect("ready"));
        assert_eq!(
            next.poll_event(),
            Some(Event::Unknown {
                session: key.fingerprint()
            })
        );
        assert!(outcome.set_cookie(WriteResult::Applied).is_some());
    }

    #[test]
    fn a_tombstone_tells_why_the_record_is_gone() {
        let mut first = SessionMachine::begin(spec(false), [], T0);
        first.insert("user", "ada").expect("ready");
        let cookie = cookie_pair(&first.finish(200, T0, &mut rng()).expect("finishes"));
        let idle = spec(false)
            .def()
            .expiry
            .idle_timeout()
            .expect("web has an idle timeout");
        let ttl = spec(false).def().expiry.ttl().expect("web has a ttl");
        let expect = |created: Timestamp, seen: Timestamp, now: Timestamp| {
            let mut next = SessionMachine::begin(spec(false), [cookie.as_bytes()], now);
            let key = next.load_request().expect("a load").fingerprint();
            next.handle_expired(created, seen, now).expect("requested");
            assert!(next.is_new().expect("ready"), "the presented id is never adopted");
            assert!(matches!(
                next.handle_expired(created, seen, now),
                Err(SessionError::UnexpectedLoad)
            ));
            (key, next.poll_event())
        };
        let (key, event) = expect(T0, T0, T0.saturating_add(idle));
        assert_eq!(
            event,
            Some(Event::Expired {
                session: Some(key),
                by: ExpiredBy::Idle
            })
        );
        let (_, event) = expect(T0, T0.saturating_add(ttl), T0.saturating_add(ttl));
        assert!(matches!(
            event,
            Some(Event::Expired {
                by: ExpiredBy::Absolute,
                ..
            })
        ));
        // Still live by the current policy: the store's reason cannot be trusted.
        let (key, event) = expect(T0, T0, T0);
        assert_eq!(event, Some(Event::Unknown { session: key }));
    }

    #[test]
    fn a_tampered_id_is_an_anonymous_request() {
        let header = b"__Host-web=not-a-signed-id";
        let mut machine = SessionMachine::begin(spec(false), [&header[..]], T0);
        assert!(machine.load_request().is_none());
        assert!(matches!(machine.poll_event(), Some(Event::CookieRejected { .. })));
        assert!(machine.is_new().expect("ready"));
    }
}
