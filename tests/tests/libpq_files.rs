//! libpq's files against the real server: a password from a `.pgpass` file (per host, over TCP
//! and the Unix socket), a connection described by a service file, a password file with group
//! or world access ignored with libpq's warning — and psql (libpq itself) agreeing on the same
//! files.
//!
//! The files are named in the configuration (`passfile=`, `servicefile=`), not through the
//! process environment, which the threaded test binary shares. The one case that needs
//! `PGPASSFILE`, `PGSERVICE` and `PGSERVICEFILE`, and libpq's warning on stderr, runs in a
//! child process: this test binary again, with only that test selected (as libpq_env.rs does).

use std::path::{Path, PathBuf};
use std::process::Command;

use pg_harness::{Role, cluster};
use pgwire_lite::{Config, Connection, Error};
use pool_core::PsqlPool;

/// Set in the child only: the DSN to connect with.
const CHILD_DSN: &str = "PSQLPOOL_LIBPQ_FILES_CHILD_DSN";
/// Prefix of the line on which the child reports what happened.
const OUTCOME: &str = "libpq-files outcome: ";

/// A private directory for one test's files, removed on drop.
struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::env::temp_dir().join(format!(
            "psqlpool-libpq-files-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        Files(dir)
    }

    /// Writes `name` with mode `mode` (unix), returning its path.
    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        chmod(&path, mode);
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {path:?}: {e}"));
}

#[cfg(not(unix))]
fn chmod(_path: &Path, _mode: u32) {}

/// A password-file field: `:` and `\` escaped.
fn field(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// The SCRAM role's line for `host` and the cluster's port, with `password`.
fn line(host: &str, password: &str) -> String {
    let role = Role::Scram;
    format!(
        "{}:{}:{}:{}:{}\n",
        field(host),
        cluster().port(),
        cluster().db_name(),
        role.user(),
        field(password)
    )
}

/// A key=value DSN value, quoted.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The SCRAM role without a password, over TCP at `hosts` (one port for all), with `extra`.
fn dsn(hosts: &str, extra: &str) -> String {
    format!(
        "host={hosts} port={} dbname={} user={} connect_timeout=5 {extra}",
        cluster().port(),
        cluster().db_name(),
        Role::Scram.user()
    )
}

async fn current_user(dsn: &str) -> Result<String, Error> {
    let config: Config = dsn.parse().map_err(Error::Config)?;
    let mut conn = Connection::connect(&config).await?;
    let row = conn.query_one("SELECT current_user::text", &[]).await?;
    Ok(row.get::<_, String>(0))
}

fn scram_password() -> &'static str {
    Role::Scram.password().unwrap_or_default()
}

#[tokio::test]
async fn pgpass_supplies_the_password_of_the_host_tried() {
    if !cluster().require_roles() {
        return;
    }
    let files = Files::new("per-host");
    // 127.0.0.1 and localhost reach the same server; the file gives them different passwords,
    // so which one authenticates shows which line was used for which host.
    let text = format!(
        "# comment\n\n{}{}",
        line("127.0.0.1", "wrong-for-127"),
        line("localhost", scram_password())
    );
    let pgpass = files.write("pgpass", &text, 0o600);
    let passfile = format!("passfile={}", quoted(&pgpass.to_string_lossy()));

    assert_eq!(
        current_user(&dsn("localhost", &passfile)).await.ok(),
        Some(Role::Scram.user().to_owned())
    );
    // Only 127.0.0.1: its line's wrong password is sent and refused.
    match current_user(&dsn("127.0.0.1", &passfile)).await {
        Err(e) => assert_eq!(
            e.code(),
            Some("28P01"),
            "expected invalid_password, got {e}"
        ),
        Ok(user) => panic!("connected as {user} with the wrong line's password"),
    }
    // Both, 127.0.0.1 first: its attempt fails, the next host's own line succeeds.
    assert_eq!(
        current_user(&dsn("127.0.0.1,localhost", &passfile))
            .await
            .map_err(|e| e.to_string()),
        Ok(Role::Scram.user().to_owned())
    );
    // A given password wins over the file.
    let given = format!("{passfile} password={}", quoted(scram_password()));
    assert_eq!(
        current_user(&dsn("127.0.0.1", &given)).await.ok(),
        Some(Role::Scram.user().to_owned())
    );
}

#[tokio::test]
async fn pgpass_matches_a_unix_socket_by_its_directory() {
    if !cluster().require_roles() {
        return;
    }
    let files = Files::new("socket");
    let dir = cluster().socket_dir().to_string_lossy().into_owned();
    let pgpass = files.write("pgpass", &line(&dir, scram_password()), 0o600);
    let passfile = format!("passfile={}", quoted(&pgpass.to_string_lossy()));
    assert_eq!(
        current_user(&dsn(&quoted(&dir), &passfile))
            .await
            .map_err(|e| e.to_string()),
        Ok(Role::Scram.user().to_owned())
    );
}

#[cfg(unix)]
#[tokio::test]
async fn pgpass_with_group_or_world_access_is_ignored() {
    if !cluster().require_roles() {
        return;
    }
    let files = Files::new("perm");
    let pgpass = files.write("pgpass", &line("*", scram_password()), 0o644);
    let passfile = format!("passfile={}", quoted(&pgpass.to_string_lossy()));
    match current_user(&dsn("127.0.0.1", &passfile)).await {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("no password was given"), "{msg}");
            assert!(!msg.contains(scram_password()), "{msg}");
        }
        Ok(user) => panic!("connected as {user} with a world-readable password file"),
    }
    chmod(&pgpass, 0o600);
    assert_eq!(
        current_user(&dsn("127.0.0.1", &passfile)).await.ok(),
        Some(Role::Scram.user().to_owned())
    );
}

#[tokio::test]
async fn service_file_describes_the_connection_for_a_connection_and_a_pool() {
    if !cluster().require_roles() {
        return;
    }
    let files = Files::new("service");
    let text = format!(
        "# services\n[other]\nhost=nowhere.invalid\n\n[test-db]\nhost={}\nport={}\n\
         dbname={}\nuser={}\npassword={}\napplication_name=from_service\n",
        cluster().host(),
        cluster().port(),
        cluster().db_name(),
        Role::Scram.user(),
        scram_password()
    );
    let servicefile = files.write("pg_service.conf", &text, 0o600);
    let svc = format!(
        "service=test-db servicefile={}",
        quoted(&servicefile.to_string_lossy())
    );
    let config: Config = svc.parse().unwrap_or_else(|e| panic!("{e}"));
    let mut conn = Connection::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("connect with the service: {e}"));
    let row = conn
        .query_one(
            "SELECT current_user::text, current_setting('application_name')",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.get::<_, String>(0), Role::Scram.user());
    assert_eq!(row.get::<_, String>(1), "from_service");
    // A DSN key wins over the service's.
    let mut conn = Connection::connect(
        &format!("{svc} application_name=from_dsn")
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let row = conn
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.get::<_, String>(0), "from_dsn");

    // The pool takes the same DSN.
    let pool = PsqlPool::builder()
        .dsn(svc.clone())
        .max_db_pool_size(2)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    pool.startup().await.unwrap_or_else(|e| panic!("{e}"));
    let rows = pool
        .execute("SELECT current_user::text", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows.rows().first().map(|r| r.get::<_, String>(0)),
        Some(Role::Scram.user().to_owned())
    );
    pool.close().await;

    // An unknown service names itself and the file searched.
    let missing = format!(
        "service=nope servicefile={}",
        quoted(&servicefile.to_string_lossy())
    );
    let err = Connection::connect(&missing.parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains(&format!(
            "definition of service \"nope\" not found (searched \"{}\"",
            servicefile.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn psql_reads_the_same_files_the_same_way() {
    if !cluster().require_roles() {
        return;
    }
    // libpq itself, on the files the tests above use: the same line per host, the same
    // permission check with the same warning.
    let files = Files::new("psql");
    let text = format!(
        "{}{}",
        line("127.0.0.1", "wrong-for-127"),
        line("localhost", scram_password())
    );
    let pgpass = files.write("pgpass", &text, 0o600);
    let passfile = format!("passfile={}", quoted(&pgpass.to_string_lossy()));
    let psql = |hosts: &str| cluster().psql_with(&dsn(hosts, &passfile), "SELECT current_user");
    assert_eq!(psql("localhost"), Ok(Role::Scram.user().to_owned()));
    let refused = psql("127.0.0.1").err().unwrap_or_default();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    #[cfg(unix)]
    {
        chmod(&pgpass, 0o644);
        let warned = psql("localhost").err().unwrap_or_default();
        let warning = format!(
            "WARNING: password file \"{}\" has group or world access; permissions should be \
             u=rw (0600) or less",
            pgpass.display()
        );
        assert!(warned.contains(&warning), "{warned}");
    }
}

/// Prints every event's message to stderr, as libpq prints its warnings: what a user's
/// `tracing` subscriber shows of the password file warning.
struct StderrEvents;

impl tracing::Subscriber for StderrEvents {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message;
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    eprintln!("{v:?}");
                }
            }
        }
        event.record(&mut Message);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Child side: connects with the process environment as given, prints the outcome.
fn child_connect(dsn: &str) {
    let _events = tracing::subscriber::set_default(StderrEvents);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let outcome = runtime.block_on(async {
        match current_user(dsn).await {
            Ok(user) => format!("connected as {user}"),
            Err(e) => format!("error: {e}"),
        }
    });
    println!("{OUTCOME}{outcome}");
}

/// Parent side: runs the test `name` of this binary in a child whose `PG*` environment is
/// exactly `vars`; returns the outcome line and the child's stderr.
fn run_child(name: &str, dsn: &str, vars: &[(&str, &Path)]) -> (String, String) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test binary path: {e}"));
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"]);
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env(CHILD_DSN, dsn).envs(vars.iter().copied());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running the child test {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child {name} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let outcome = stdout
        .lines()
        .find_map(|l| l.split_once(OUTCOME))
        .map(|(_, outcome)| outcome.to_owned())
        .unwrap_or_else(|| panic!("child {name} reported nothing\n{stdout}\n{stderr}"));
    (outcome, stderr)
}

#[test]
fn environment_names_the_files_as_libpq_reads_them() {
    const NAME: &str = "environment_names_the_files_as_libpq_reads_them";
    if let Some(dsn) = std::env::var_os(CHILD_DSN) {
        child_connect(&dsn.to_string_lossy());
        return;
    }
    if !cluster().require_roles() {
        return;
    }
    let files = Files::new("env");
    // PGSERVICE + PGSERVICEFILE give host, port, dbname and user; PGPASSFILE the password.
    let service = files.write(
        "services",
        &format!(
            "[env-svc]\nhost=127.0.0.1\nport={}\ndbname={}\nuser={}\n",
            cluster().port(),
            cluster().db_name(),
            Role::Scram.user()
        ),
        0o600,
    );
    let pgpass = files.write("pgpass", &line("127.0.0.1", scram_password()), 0o600);
    let vars = [
        ("PGSERVICE", Path::new("env-svc")),
        ("PGSERVICEFILE", service.as_path()),
        ("PGPASSFILE", pgpass.as_path()),
    ];
    let (outcome, stderr) = run_child(NAME, "connect_timeout=5", &vars);
    assert_eq!(outcome, format!("connected as {}", Role::Scram.user()));
    assert!(!stderr.contains("WARNING"), "{stderr}");

    // The same file with world access: ignored, with libpq's warning (a tracing event, which
    // the child prints to stderr).
    #[cfg(unix)]
    {
        chmod(&pgpass, 0o604);
        let (outcome, stderr) = run_child(NAME, "connect_timeout=5", &vars);
        assert!(
            outcome.starts_with("error: ") && outcome.contains("no password was given"),
            "{outcome}"
        );
        let warning = format!(
            "WARNING: password file \"{}\" has group or world access; permissions should be \
             u=rw (0600) or less",
            pgpass.display()
        );
        assert!(stderr.contains(&warning), "{stderr}");
        assert!(!stderr.contains(scram_password()), "{stderr}");
    }
}
