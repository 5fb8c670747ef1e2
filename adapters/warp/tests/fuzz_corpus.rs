//! Replays the committed `warp_requests` fuzz corpus through the fuzz target's body.

#[path = "../../../fuzz/src/adapter_steps.rs"]
#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod adapter_steps;
#[path = "../../../fuzz/src/warp_bodies.rs"]
#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod bodies;
#[path = "../../../fuzz/src/replay.rs"]
#[allow(dead_code, unreachable_pub)]
mod replay;

#[test]
fn warp_requests_corpus() {
    replay::replay("warp_requests", bodies::warp_requests);
}
