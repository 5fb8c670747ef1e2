//! Replays the committed `axum_requests` fuzz corpus through the fuzz target's body.

use sessionkit_testkit::fuzz::axum_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn axum_requests_corpus() {
    replay::replay("axum_requests", bodies::axum_requests);
}
