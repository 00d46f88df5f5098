//! The pool's `tracing` output on the console, through tracing-subscriber's `fmt` subscriber
//! (the application chooses the subscriber; the library only emits). Shows the `acquire` and
//! `query` spans with OpenTelemetry's field names, a failed statement's SQLSTATE, the
//! slow-statement warning, and connections opening and closing with their reason.
//!
//! Runs against a throwaway PostgreSQL it starts itself (or `DATABASE_URL`):
//!
//! `cargo run -p pool-core --example tracing_console`

use std::io::IsTerminal;
use std::time::Duration;

use pool_core::PsqlPool;
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // DEBUG shows the spans (as their events' context, and when they close) and the
    // connection events; at INFO only warnings such as slow statements remain.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal())
        .init();

    let pg = pg_harness::cluster();
    let url = if pg.is_external() {
        std::env::var("DATABASE_URL")?
    } else {
        pg.admin_url()
    };
    let pool = PsqlPool::builder()
        .dsn(url)
        .max_db_pool_size(2)
        .slow_statement_threshold(Duration::from_millis(50))
        .build()?;
    pool.startup().await?;

    // Parameter values never reach the output: only the SQL text with `$1`.
    let r = pool
        .execute("SELECT $1::text AS greeting", &[&"not in the logs"])
        .await?;
    println!("got {} row(s)", r.len());
    if let Err(e) = pool.execute("SELECT 1 / $1::int4", &[&0i32]).await {
        println!("expected failure: {e}");
    }
    pool.execute("SELECT pg_sleep(0.1)", &[]).await?;

    pool.close().await;
    Ok(())
}
