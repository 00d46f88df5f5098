//! What every example starts with: a database to talk to. In your own program this is your
//! DSN (from configuration, or libpq's `PG*` variables and service file).

/// `DATABASE_URL` if set, else the superuser URL of a throwaway PostgreSQL that this process
/// starts (and that is stopped and removed when it exits).
pub fn database_url() -> String {
    let pg = pg_harness::cluster();
    if pg.is_external() {
        eprintln!("using DATABASE_URL ({}:{})", pg.host(), pg.port());
    } else {
        eprintln!(
            "started a throwaway PostgreSQL on {}:{}",
            pg.host(),
            pg.port()
        );
    }
    pg.admin_url()
}
