//! Resident memory per session of the memory driver at 100,000 sessions.

fn main() {
    sessionkit_benches::memory::memory_per_session();
}
