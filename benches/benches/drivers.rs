//! Redis and PostgreSQL through axum: round trips per request counted by the servers,
//! and requests/s. Needs `REDIS_URL` and/or `DATABASE_URL` (or `scripts/drivers.sh`).

fn main() {
    let options = sessionkit_benches::drivers::Options::from_env_and_args(std::env::args().skip(1));
    sessionkit_benches::drivers::run(&options);
}
