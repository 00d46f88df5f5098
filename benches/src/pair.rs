//! The setup every single-connection bench shares: a current-thread runtime and one connection
//! each for psqlpool (pgwire-lite) and tokio-postgres, to the same throwaway server.

use tokio::runtime::Runtime;

/// A current-thread runtime, a pgwire-lite connection and a tokio-postgres client (its
/// connection task spawned on that runtime), both to `pg_harness::cluster()`.
pub fn connect_pair() -> (Runtime, pgwire_lite::Connection, tokio_postgres::Client) {
    let url = pg_harness::cluster().admin_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config: pgwire_lite::Config = url.parse().expect("url");
    let ours = rt
        .block_on(pgwire_lite::Connection::connect(&config))
        .expect("connect ours");
    let (tp, tp_conn) = rt
        .block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
        .expect("connect tokio-postgres");
    rt.spawn(async move {
        let _ = tp_conn.await;
    });
    (rt, ours, tp)
}
