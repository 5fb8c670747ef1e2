//! `serve <variant> <case> <addr>`: serves one variant's app for load generators. For
//! cases that need a session it creates one first and prints its cookie as
//! `COOKIE=<name=value>`; then it prints `LISTENING=<addr>`.

use sessionkit_benches::{Bench, Case, Variant};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(variant), Some(case), Some(addr)) = (
        args.first().and_then(|v| Variant::parse(v)),
        args.get(1).and_then(|c| Case::parse(c)),
        args.get(2),
    ) else {
        eprintln!("usage: serve <variant> <case> <addr>");
        std::process::exit(2);
    };
    let bench = Bench::new(variant, case).await;
    if let Some(cookie) = bench.cookie() {
        println!("COOKIE={}", cookie.to_str()?);
    }
    let listener = tokio::net::TcpListener::bind(addr.as_str()).await?;
    println!("LISTENING={}", listener.local_addr()?);
    axum::serve(listener, bench.app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
