//! Replays the committed `warp_requests` fuzz corpus through the fuzz target's body.

use sessionkit_testkit::fuzz::warp_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn warp_requests_corpus() {
    replay::replay("warp_requests", bodies::warp_requests);
}
