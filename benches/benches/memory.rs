//! Resident memory per session of the memory driver at 100,000 and 1,000,000 sessions.

fn main() {
    sessionkit_benches::memory::memory_per_session_at_every_size();
}
