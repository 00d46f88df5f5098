//! The first command of the README: start the embedded throwaway PostgreSQL (or use
//! `DATABASE_URL`) and talk to it.
//!
//! `cargo run -p psqlpool-tests --example demo`
//!
//! For now it asks through psql; it switches to psqlpool's own client once that lands.

fn main() {
    let pg = pg_harness::cluster();
    if pg.is_external() {
        println!("using DATABASE_URL ({}:{})", pg.host(), pg.port());
    } else {
        println!(
            "started a throwaway PostgreSQL on {}:{} (data in {})",
            pg.host(),
            pg.port(),
            pg.data_dir().display()
        );
    }
    println!("server version: {}", pg.psql("SELECT version()"));
    if !pg.is_external() {
        println!("connect while it runs with: psql '{}'", pg.admin_url());
        println!("it is stopped and removed when this process exits");
    }
}
