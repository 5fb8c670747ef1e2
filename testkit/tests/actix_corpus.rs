//! Replays the committed `actix_requests` fuzz corpus through the fuzz target's body.

use sessionkit_testkit::fuzz::actix_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn actix_requests_corpus() {
    replay::replay("actix_requests", bodies::actix_requests);
}
