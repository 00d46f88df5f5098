//! pgbench's schema (`pgbench -i -s N`, server-side generation), created with SQL through
//! tokio-postgres when absent or at another scale, and reset between TPC-B runs.

use tokio_postgres::NoTls;

use crate::drivers::err;

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("connecting for the schema: {}", err(e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The scale of the existing pgbench tables, `None` if they are missing or incomplete.
async fn existing_scale(client: &tokio_postgres::Client) -> Option<i64> {
    let branches = client
        .query_one("SELECT count(*) FROM pgbench_branches", &[])
        .await
        .ok()?
        .try_get::<_, i64>(0)
        .ok()?;
    let accounts = client
        .query_one(
            "SELECT count(*) FROM pgbench_accounts WHERE aid <= 100000 * $1::int8",
            &[&branches],
        )
        .await
        .ok()?
        .try_get::<_, i64>(0)
        .ok()?;
    client
        .query_one("SELECT count(*) FROM pgbench_tellers", &[])
        .await
        .ok()?;
    client
        .query_one("SELECT 1 FROM pgbench_history LIMIT 1", &[])
        .await
        .ok()?;
    (accounts == branches * 100_000).then_some(branches)
}

/// Makes sure pgbench's four tables exist at `scale` (recreating them otherwise, or when `force`).
/// Returns whether they were (re)created.
pub async fn ensure(url: &str, scale: i32, force: bool) -> Result<bool, String> {
    if !(1..=20_000).contains(&scale) {
        return Err(format!(
            "--scale {scale}: must be 1..=20000 (aid is int4, as in pgbench below scale 20000)"
        ));
    }
    let client = connect(url).await?;
    if !force && existing_scale(&client).await == Some(i64::from(scale)) {
        return Ok(false);
    }
    // pgbench -i's default steps (dtgvp) with server-side generation (G), same DDL and fillfactor.
    let script = format!(
        "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;
         CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
         CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
         CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
         CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);
         INSERT INTO pgbench_branches (bid, bbalance) SELECT bid, 0 FROM generate_series(1, {scale}) AS bid;
         INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT tid, (tid - 1) / 10 + 1, 0 FROM generate_series(1, {t}) AS tid;
         INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT aid, (aid - 1) / 100000 + 1, 0, '' FROM generate_series(1, {a}) AS aid;
         ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
         ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
         ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);",
        t = i64::from(scale) * 10,
        a = i64::from(scale) * 100_000,
    );
    client
        .batch_execute(&script)
        .await
        .map_err(|e| format!("creating the pgbench tables: {}", err(e)))?;
    // A multi-statement simple query is one implicit transaction, which VACUUM refuses: alone.
    client
        .batch_execute(
            "VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history",
        )
        .await
        .map_err(|e| format!("vacuuming the new pgbench tables: {}", err(e)))?;
    Ok(true)
}

/// Reads the accounts table and its index into shared buffers (pg_prewarm, when the server
/// has it), so that the first driver of the first round does not pay for filling the cache:
/// without it, round 1's first driver measured 10-15 % below its round 2. Best effort: a server
/// without the extension (or a user who may not create it) only gets a slower first round.
pub async fn prewarm(url: &str) -> bool {
    let Ok(client) = connect(url).await else {
        return false;
    };
    client
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pg_prewarm;
             SELECT pg_prewarm('pgbench_accounts_pkey'), pg_prewarm('pgbench_accounts');",
        )
        .await
        .is_ok()
}

/// What pgbench does before a TPC-B run unless `-n`: vacuum the small hot tables and empty the
/// Runs `sql` (a GRANT, say) as the schema's owner.
pub async fn grant(url: &str, sql: &str) -> Result<(), String> {
    let client = connect(url).await?;
    client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {}", err(e)))
}

/// history, so every driver's run starts from the same table state.
pub async fn reset_for_tpcb(url: &str) -> Result<(), String> {
    let client = connect(url).await?;
    for sql in [
        "VACUUM pgbench_branches",
        "VACUUM pgbench_tellers",
        "TRUNCATE pgbench_history",
    ] {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{sql}: {}", err(e)))?;
    }
    Ok(())
}
