//! `reqloop <variant> <case> <iterations>`: sends `iterations` requests of one case
//! through one variant in process, then prints the wall time per request. The callgrind
//! script runs it for two iteration counts and divides the difference in instructions
//! by the difference in requests, so set-up costs cancel out.

use std::time::Instant;

use sessionkit_benches::{Bench, Case, Variant, runtime};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: reqloop <variant> <case> <iterations>";
    let (Some(variant), Some(case), Some(iterations)) = (
        args.first().and_then(|v| Variant::parse(v)),
        args.get(1).and_then(|c| Case::parse(c)),
        args.get(2).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let rt = runtime();
    let bench = rt.block_on(Bench::new(variant, case));
    let start = Instant::now();
    for _ in 0..iterations {
        let status = rt.block_on(bench.send());
        assert!(
            status < 400,
            "{} {} answered {status}",
            variant.name(),
            case.name()
        );
    }
    let elapsed = start.elapsed();
    #[allow(clippy::cast_precision_loss)] // a report, not arithmetic that must be exact
    let per_request = elapsed.as_nanos() as f64 / iterations.max(1) as f64;
    println!("{} {} {iterations} {per_request:.0}", variant.name(), case.name());
}
