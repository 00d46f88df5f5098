//! A small tour against the embedded throwaway PostgreSQL (or `DATABASE_URL`):
//! connect with pgwire-lite, run simple and extended queries, print psqlpy-style result maps.
//!
//! `cargo run -p psqlpool-tests --example demo`

use pgwire_lite::{Config, Connection};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pg = pg_harness::cluster();
    let url = if pg.is_external() {
        println!("using DATABASE_URL ({}:{})", pg.host(), pg.port());
        std::env::var("DATABASE_URL")?
    } else {
        println!(
            "started a throwaway PostgreSQL on {}:{}",
            pg.host(),
            pg.port()
        );
        pg.admin_url()
    };
    let config: Config = url.parse()?;
    let mut conn = Connection::connect(&config).await?;
    println!(
        "connected: server {} (backend pid {})",
        conn.parameter("server_version").unwrap_or("?"),
        conn.backend_pid()
    );

    conn.batch_execute(
        "CREATE TEMP TABLE users (id int4 PRIMARY KEY, username text, balance numeric);
         INSERT INTO users VALUES (100, 'Alex', 12.50), (101, 'Kim', 7)",
    )
    .await?;
    let res = conn
        .execute(
            "SELECT * FROM users WHERE id = $1 AND username = $2",
            &[&100i32, &"Alex"],
        )
        .await?;
    for row in res.result() {
        println!("row: {row:?}");
    }
    let total: pgwire_lite::types::Numeric = conn
        .query_one("SELECT sum(balance) FROM users", &[])
        .await?
        .get(0);
    println!("total balance: {total}");
    conn.close().await?;
    if !pg.is_external() {
        println!("the throwaway server is stopped and removed when this process exits");
    }
    Ok(())
}
