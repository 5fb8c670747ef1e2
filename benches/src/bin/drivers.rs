//! `drivers [--redis URL] [--postgres URL] [--requests N] [--concurrency C]`: see
//! `sessionkit_benches::drivers` (run by `scripts/drivers.sh`).

fn main() {
    let options = sessionkit_benches::drivers::Options::from_env_and_args(std::env::args().skip(1));
    sessionkit_benches::drivers::run(&options);
}
