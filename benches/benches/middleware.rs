//! Side by side, in process: the same axum handlers behind each session middleware,
//! requests sent through the router with `tower::ServiceExt::oneshot`, so only the
//! middleware differs. `scripts/report.py` turns the results into the overhead table.

use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit_benches::{Bench, Case, Variant, runtime};

fn middleware(c: &mut Criterion) {
    let rt = runtime();
    for case in Case::ALL {
        let mut group = c.benchmark_group(format!("middleware/{}", case.name()));
        for variant in Variant::ALL {
            let bench = rt.block_on(Bench::new(variant, case));
            group.bench_function(variant.name(), |b| {
                b.iter(|| {
                    let status = rt.block_on(bench.send());
                    assert!(
                        status < 400,
                        "{} {} answered {status}",
                        variant.name(),
                        case.name()
                    );
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, middleware);
criterion_main!(benches);
