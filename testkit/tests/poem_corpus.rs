//! Replays the committed `poem_requests` fuzz corpus through the fuzz target's body.

use sessionkit_testkit::fuzz::poem_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn poem_requests_corpus() {
    replay::replay("poem_requests", bodies::poem_requests);
}
