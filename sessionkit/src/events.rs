//! Session events as `tracing` events. Sessions appear only as 8-hex-digit
//! fingerprints; ids, keys and cookie values are never logged.

use sessionkit_core::{Event, Fingerprint, SessionName};

fn fp(session: Option<Fingerprint>) -> String {
    session.map_or_else(|| "-".to_owned(), |f| f.to_string())
}

/// Emits one core event under the `sessionkit` target.
pub(crate) fn emit(name: &SessionName, event: &Event) {
    let session = name.as_str();
    match event {
        Event::CookieRejected { reason } => {
            tracing::debug!(target: "sessionkit", session, %reason, "session cookie rejected");
        }
        Event::Expired { session: id, by } => {
            tracing::info!(target: "sessionkit", session, id = %fp(*id), by = ?by, "session expired");
        }
        Event::Unknown { session: id } => {
            // Stores forget expired records, so an expired server-side session shows up
            // here rather than as `Expired`.
            tracing::info!(target: "sessionkit", session, id = %id, "session not found (expired or ended)");
        }
        Event::CorruptRecord { session: id } => {
            tracing::warn!(target: "sessionkit", session, id = %id, "corrupt session record treated as missing");
        }
        Event::Created { session: id } => {
            tracing::info!(target: "sessionkit", session, id = %fp(*id), "session created");
        }
        Event::Regenerated { from, to } => {
            tracing::info!(target: "sessionkit", session, from = %from, to = %to, "session id regenerated");
        }
        Event::Destroyed { session: id } => {
            tracing::info!(target: "sessionkit", session, id = %fp(*id), "session destroyed");
        }
        Event::Reissued { session: id } => {
            tracing::info!(target: "sessionkit", session, id = %fp(*id), "session cookie re-issued with the primary key");
        }
        Event::Renewed { from, to } => {
            tracing::info!(target: "sessionkit", session, from = %from, to = %to, "session id renewed (renew_after)");
        }
        Event::Revoked { .. } => {
            tracing::info!(target: "sessionkit", session, "revoked cookie session presented (logged out); treated as anonymous");
        }
        Event::ChangesDropped { status } => {
            tracing::info!(target: "sessionkit", session, status, "server error response: session changes dropped");
        }
        other => tracing::debug!(target: "sessionkit", session, event = ?other, "session event"),
    }
}
