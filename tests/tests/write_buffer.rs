//! Finding 7 of issue #11, the memory half: a large request's write buffer is not kept for
//! the connection's lifetime. Alone in its own test binary because it measures the process's
//! resident memory, which other tests running in parallel would disturb.

use pg_harness::{Role, cluster};
use pgwire_lite::{Config, Connection};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test]
async fn f7_a_large_parameter_does_not_pin_its_memory() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let cfg: Config = cluster().url(Role::Postgres).parse().expect("URL parses");
    let mut c = Connection::connect(&cfg).await.expect("connects");
    let before = rss_bytes();
    {
        let big = vec![7u8; 256 << 20];
        let r = c
            .execute("SELECT length($1::bytea) AS n", &[&big.as_slice()])
            .await
            .expect("256 MiB parameter");
        assert_eq!(r.rows()[0].get::<_, i32>("n"), 256 << 20);
    }
    let after = rss_bytes();
    // The connection would otherwise keep a 256 MiB write buffer for its lifetime.
    assert!(
        after < before + (96 << 20),
        "RSS grew from {} MiB to {} MiB",
        before >> 20,
        after >> 20
    );
    assert!(!c.is_broken());
}
