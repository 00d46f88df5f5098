//! Starts the harness's throwaway PostgreSQL (or uses `DATABASE_URL`), prints how to reach it,
//! and keeps it until stdin closes (Ctrl-D, or Ctrl-C: the reaper cleans up either way).
//!
//! `cargo run -p psqlpool-tests --bin pg-throwaway`
//!
//! Output is `key=value` lines ending with `ready`; the harness self-tests parse them.

use std::io::Read;

use pg_harness::Role;

fn main() {
    let pg = pg_harness::cluster();
    println!("external={}", pg.is_external());
    println!("admin_url={}", pg.admin_url());
    if !pg.is_external() {
        println!("scram_url={}", pg.url(Role::Scram));
        println!("socket_dir={}", pg.socket_dir().display());
        println!("data_dir={}", pg.data_dir().display());
        println!(
            "postmaster_pid={}",
            pg.pid_of_postmaster()
                .map_or_else(|| "none".to_string(), |p| p.to_string())
        );
    }
    println!("server_version={}", pg.psql("SHOW server_version"));
    println!("ready");
    // Wait for EOF on stdin; the content is irrelevant.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
