//! The throwaway cluster: template, start, control, admin helpers.

use std::ffi::OsString;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::bins;
use crate::reaper::{self, CLUSTER_PREFIX, TEMPLATE_BUILD_PREFIX};
use crate::roles::{self, ADMIN_USER, DB_NAME, Role};
use crate::sys::{self, Account};
use crate::url;

/// Server settings of every throwaway cluster: durability off (a test cluster is thrown away
/// anyway, and fsync dominates start-up and DDL on a shared 2-core machine), room for pool tests.
const BASE_CONF: &str = "\n# --- pg_harness (psqlpool tests)\n\
fsync = off\n\
synchronous_commit = off\n\
full_page_writes = off\n\
max_connections = 200\n\
shared_buffers = 128MB\n\
log_min_messages = warning\n\
include_if_exists = 'psqlpool_instance.conf'\n";

/// Per-instance settings (port, socket dir) live in this file inside the data dir, included last,
/// so the template stays instance-neutral and a restart keeps the same port.
const INSTANCE_CONF: &str = "psqlpool_instance.conf";

/// Present in a finished template; its absence means a half-built or foreign directory.
const TEMPLATE_MARKER: &str = "psqlpool_template_ok";

/// Bump when the template layout changes in a way the hashed inputs do not capture.
const TEMPLATE_FORMAT: &str = "1";

/// How `pg_ctl` stops the server (`-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Wait for every client to disconnect.
    Smart,
    /// Roll back and disconnect clients (FATAL 57P01 `admin_shutdown`), then stop cleanly.
    Fast,
    /// Quit at once, without a checkpoint: crash recovery on the next start.
    Immediate,
}

impl ShutdownMode {
    fn as_arg(self) -> &'static str {
        match self {
            ShutdownMode::Smart => "smart",
            ShutdownMode::Fast => "fast",
            ShutdownMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL server for tests: either a throwaway cluster this process started (the default)
/// or the server named by `DATABASE_URL` ("external").
///
/// Methods that need the throwaway cluster (special roles, server control, the data dir) panic on
/// an external one; tests gate them with [`Cluster::require_roles`].
#[derive(Debug)]
pub struct Cluster {
    host: String,
    port: u16,
    psql: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    External { url: String },
    Local(Local),
}

#[derive(Debug)]
struct Local {
    dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    bin_dir: PathBuf,
    account: Option<Account>,
    /// Whether `Drop` stops and removes it (false for the process-wide shared cluster, which lives
    /// in a static that is never dropped anyway; the reaper handles it).
    owned: bool,
}

impl Cluster {
    /// The cluster the harness would share: external if `DATABASE_URL` is set, else a new
    /// throwaway one. Prefer [`crate::cluster`], which starts it once per process.
    pub(crate) fn from_env() -> Cluster {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Cluster::external(url),
            _ => {
                let mut cluster = Cluster::start_throwaway();
                if let Kind::Local(local) = &mut cluster.kind {
                    local.owned = false;
                }
                cluster
            }
        }
    }

    /// A handle on an existing server (not started, stopped or changed by the harness).
    pub fn external(url: String) -> Cluster {
        let (host, port) = url::host_port(&url);
        Cluster {
            host,
            port,
            psql: bins::find_psql(),
            kind: Kind::External { url },
        }
    }

    /// Starts a new private throwaway cluster, independent of the shared one: for tests that stop,
    /// restart or crash the server. Stopped (immediately) and deleted on drop, and by the reaper if
    /// the process dies first. Takes about a second once the per-machine template exists.
    ///
    /// # Panics
    /// When the PostgreSQL binaries are missing (the message says what to install) or the server
    /// does not start (the message includes its log).
    pub fn start_throwaway() -> Cluster {
        Cluster::start_throwaway_with(|_| {})
    }

    /// [`Cluster::start_throwaway`], with `prepare` called on the data directory before the
    /// server starts: for a test that needs its own `postgresql.conf` lines, `pg_hba.conf` or
    /// files (TLS certificates, say). Files it writes are then handed to the server's account.
    ///
    /// # Panics
    /// As [`Cluster::start_throwaway`].
    pub fn start_throwaway_with(prepare: impl FnOnce(&Path)) -> Cluster {
        let bin_dir = bins::find_bin_dir();
        let account = sys::server_account();
        let tmp = std::env::temp_dir();
        reaper::sweep_leftovers(&tmp);
        let template = template(&bin_dir, account, &tmp);

        let dir = tmp.join(format!(
            "{CLUSTER_PREFIX}{}-{:016x}",
            std::process::id(),
            sys::random_u64()
        ));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("creating cluster dir {}: {e}", dir.display()));
        let local = Local {
            data_dir: dir.join("data"),
            socket_dir: dir.join("sock"),
            log_file: dir.join("server.log"),
            dir,
            bin_dir,
            account,
            owned: true,
        };
        // From here on, a panic or a kill leaves the cleanup to the reaper.
        reaper::spawn_reaper(
            &local.dir,
            &local.data_dir,
            &local.bin_dir.join("pg_ctl"),
            account,
        );
        sys::run(
            Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(&local.data_dir),
            "copying the template cluster",
        );
        std::fs::create_dir(&local.socket_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", local.socket_dir.display()));
        prepare(&local.data_dir);
        sys::chown_tree(&local.dir, account);

        let port = local.start_on_free_port();
        Cluster {
            host: "127.0.0.1".to_string(),
            port,
            psql: bins::find_psql(),
            kind: Kind::Local(local),
        }
    }

    /// Whether this is a server named by `DATABASE_URL` rather than a throwaway cluster.
    pub fn is_external(&self) -> bool {
        matches!(self.kind, Kind::External { .. })
    }

    /// Whether the test may use the special roles and server control. Prints
    /// `skipped: needs the throwaway cluster` and returns false on an external server; use as
    /// `if !cluster.require_roles() { return; }`.
    pub fn require_roles(&self) -> bool {
        if self.is_external() {
            println!("skipped: needs the throwaway cluster (DATABASE_URL is set)");
            return false;
        }
        true
    }

    fn local(&self) -> &Local {
        match &self.kind {
            Kind::Local(local) => local,
            Kind::External { .. } => panic!(
                "this needs the throwaway cluster, but DATABASE_URL is set: \
                 start the test with `if !cluster.require_roles() {{ return; }}`"
            ),
        }
    }

    /// The TCP host: `127.0.0.1` for the throwaway cluster, `DATABASE_URL`'s host otherwise.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (also the number in the Unix socket's name).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private directory holding the Unix socket `.s.PGSQL.<port>`. Throwaway cluster only.
    pub fn socket_dir(&self) -> &Path {
        &self.local().socket_dir
    }

    /// The database tests use: [`DB_NAME`] (`psqlpool_test`).
    pub fn db_name(&self) -> &str {
        DB_NAME
    }

    /// URL for `role` over TCP, every part percent-encoded:
    /// `postgresql://scram_user:scram_pass@127.0.0.1:PORT/psqlpool_test`.
    /// On an external server only [`Role::Postgres`] is available (it is `DATABASE_URL`).
    pub fn url(&self, role: Role) -> String {
        if let (Kind::External { url }, Role::Postgres) = (&self.kind, role) {
            return url.clone();
        }
        self.local();
        url::tcp_url(role.user(), role.password(), &self.host, self.port, DB_NAME)
    }

    /// URL for `role` over the Unix socket, libpq style:
    /// `postgresql://user:pass@/psqlpool_test?host=%2Ftmp%2F...%2Fsock&port=PORT`.
    /// Throwaway cluster only. The superuser is trusted on the socket.
    pub fn socket_url(&self, role: Role) -> String {
        let dir = self.socket_dir().to_string_lossy();
        url::socket_url(role.user(), role.password(), &dir, self.port, DB_NAME)
    }

    /// The superuser over TCP (`postgres`/`postgres`), or `DATABASE_URL` on an external server.
    pub fn admin_url(&self) -> String {
        self.url(Role::Postgres)
    }

    /// Runs `sql` (one or more statements, or a psql script) with psql as the superuser (over the
    /// Unix socket, or `DATABASE_URL`) against `psqlpool_test`, and returns stdout: unaligned,
    /// tuples only, columns separated by `|`, one row per line, final newline removed.
    ///
    /// # Panics
    /// When psql fails, with its stderr.
    pub fn psql(&self, sql: &str) -> String {
        let conn: Vec<OsString> = match &self.kind {
            Kind::External { url } => vec!["-d".into(), url.into()],
            Kind::Local(local) => vec![
                "-h".into(),
                local.socket_dir.clone().into(),
                "-p".into(),
                self.port.to_string().into(),
                "-U".into(),
                ADMIN_USER.into(),
                "-d".into(),
                DB_NAME.into(),
            ],
        };
        self.run_psql(&conn, sql)
            .unwrap_or_else(|stderr| panic!("psql failed on:\n{sql}\n--- stderr\n{stderr}"))
    }

    /// Runs `sql` with psql connected by `conninfo` (a URL or `key=value` string), returning
    /// stdout as [`Cluster::psql`] does, or psql's stderr when it fails (e.g. authentication).
    pub fn psql_with(&self, conninfo: &str, sql: &str) -> Result<String, String> {
        self.run_psql(&["-d".into(), conninfo.into()], sql)
    }

    fn run_psql(&self, conn: &[OsString], sql: &str) -> Result<String, String> {
        // Against our own cluster nothing of the tester's PG* environment may interfere; against
        // an external one it may be needed (PGSSLROOTCERT, PGPASSFILE...).
        let mut cmd = match &self.kind {
            Kind::Local(_) => sys::pg_command(&self.psql, None),
            Kind::External { .. } => Command::new(&self.psql),
        };
        cmd.args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
            .args(conn)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", self.psql.display()))?;
        // Feed stdin from a thread: a big script and a big result could otherwise deadlock on
        // the two pipes.
        let mut stdin = child.stdin.take().ok_or("psql stdin missing")?;
        let script = sql.to_string();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(script.as_bytes());
        });
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for psql: {e}"))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(format!(
                "{} ({})",
                String::from_utf8_lossy(&out.stderr).trim_end(),
                out.status
            ));
        }
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        Ok(stdout)
    }

    /// The data directory. Throwaway cluster only.
    pub fn data_dir(&self) -> &Path {
        &self.local().data_dir
    }

    /// The server log (pg_ctl `-l`). Throwaway cluster only.
    pub fn log_file(&self) -> &Path {
        &self.local().log_file
    }

    /// The directory of `initdb`, `pg_ctl`, `postgres`. Throwaway cluster only.
    pub fn bin_dir(&self) -> &Path {
        &self.local().bin_dir
    }

    /// The postmaster's pid from `postmaster.pid`, `None` while the server is stopped.
    /// Throwaway cluster only.
    pub fn pid_of_postmaster(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Stops the server with `pg_ctl -m fast` and waits until it is down. Throwaway cluster only.
    /// On the shared cluster this affects every concurrent test; destructive tests should use
    /// their own [`Cluster::start_throwaway`].
    pub fn stop(&self) {
        self.stop_with(ShutdownMode::Fast);
    }

    /// Stops the server with the given `pg_ctl` mode and waits until it is down.
    pub fn stop_with(&self, mode: ShutdownMode) {
        let local = self.local();
        sys::run(
            local.pg_ctl().arg("-D").arg(&local.data_dir).args([
                "-m",
                mode.as_arg(),
                "-w",
                "-t",
                "60",
                "stop",
            ]),
            "pg_ctl stop",
        );
    }

    /// Starts the stopped server on the same port and waits until it accepts connections.
    pub fn start(&self) {
        let local = self.local();
        if let Err(log) = local.pg_ctl_start() {
            panic!("pg_ctl start failed; server log:\n{log}");
        }
    }

    /// `pg_ctl -m fast restart`: clients get 57P01, the server is back on the same port.
    pub fn restart(&self) {
        self.restart_with(ShutdownMode::Fast);
    }

    /// Restarts with the given shutdown mode and waits until the server accepts connections.
    pub fn restart_with(&self, mode: ShutdownMode) {
        let local = self.local();
        sys::run(
            local
                .pg_ctl()
                .arg("-D")
                .arg(&local.data_dir)
                .arg("-l")
                .arg(&local.log_file)
                .args(["-m", mode.as_arg(), "-w", "-t", "60", "restart"]),
            "pg_ctl restart",
        );
    }

    /// A fresh identifier for per-test tables or databases; see [`crate::unique_name`].
    pub fn unique_name(&self, prefix: &str) -> String {
        crate::unique_name(prefix)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // (No let-chains: the workspace MSRV is 1.85.)
        if let Kind::Local(local) = &self.kind {
            if !local.owned {
                return;
            }
            // Best effort: never panic in drop. The reaper retries when the process ends.
            let _ = local
                .pg_ctl()
                .arg("-D")
                .arg(&local.data_dir)
                .args(["-m", "immediate", "-w", "-t", "20", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&local.dir);
        }
    }
}

impl Local {
    fn pg_ctl(&self) -> Command {
        sys::pg_command(self.bin_dir.join("pg_ctl"), self.account)
    }

    fn write_instance_conf(&self, listen: &str, port: u16) {
        write_instance_conf(&self.data_dir, &self.socket_dir, listen, port, self.account);
    }

    /// Picks a free port and starts; another process may grab the port between our probe and the
    /// server's bind, so a bind failure retries with a new port.
    fn start_on_free_port(&self) -> u16 {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            self.write_instance_conf("127.0.0.1", port);
            match self.pg_ctl_start() {
                Ok(()) => return port,
                Err(log) if is_bind_failure(&log) => last_log = log,
                Err(log) => panic!("the throwaway PostgreSQL did not start; server log:\n{log}"),
            }
        }
        panic!("the throwaway PostgreSQL could not bind a free port 5 times; last log:\n{last_log}")
    }

    /// `pg_ctl start -w`; on failure returns what the server logged during this attempt.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let log_before = std::fs::metadata(&self.log_file).map_or(0, |m| m.len());
        let out = self
            .pg_ctl()
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("could not run pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read(&self.log_file).unwrap_or_default();
        let new = log
            .get(usize::try_from(log_before).unwrap_or(0)..)
            .unwrap_or(&log);
        Err(format!(
            "{}\n--- pg_ctl stderr\n{}",
            String::from_utf8_lossy(new),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_bind_failure(log: &str) -> bool {
    log.contains("could not bind") || log.contains("could not create any TCP/IP sockets")
}

/// A port that was free a moment ago (the kernel's pick for port 0).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"))
}

fn write_instance_conf(
    data: &Path,
    socket_dir: &Path,
    listen: &str,
    port: u16,
    account: Option<Account>,
) {
    let conf = format!(
        "listen_addresses = {}\nport = {port}\nunix_socket_directories = {}\n",
        roles::quote_literal(listen),
        roles::quote_literal(&socket_dir.to_string_lossy()),
    );
    let path = data.join(INSTANCE_CONF);
    std::fs::write(&path, conf).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    sys::chown_tree(&path, account);
}

/// The initdb'd, role-populated, cleanly stopped template data dir for this PostgreSQL version,
/// built once per machine (per inputs hash) and shared by every process through an atomic rename.
fn template(bin_dir: &Path, account: Option<Account>, tmp: &Path) -> PathBuf {
    // One build at a time within this process; other processes race through the rename.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _lock = BUILDING.lock().unwrap_or_else(|e| e.into_inner());

    let version = bins::server_version_string(bin_dir);
    let uid = account.map_or_else(sys::euid, |a| a.uid).to_string();
    let key = sys::fnv1a(&[
        TEMPLATE_FORMAT.as_bytes(),
        version.as_bytes(),
        bin_dir.as_os_str().as_encoded_bytes(),
        uid.as_bytes(),
        BASE_CONF.as_bytes(),
        roles::hba_conf().as_bytes(),
        roles::setup_sql().as_bytes(),
    ]);
    let path = tmp.join(format!(
        "psqlpool-pgtemplate-{}-{key:016x}",
        bins::major_version(&version)
    ));
    if path.join(TEMPLATE_MARKER).exists() {
        return path;
    }

    let build = TemplateBuild::new(tmp, bin_dir, account);
    build.run(&version);
    match std::fs::rename(&build.data, &path) {
        Ok(()) => {}
        // Another process won the race: use its template, ours is dropped with `build`.
        Err(_) if path.join(TEMPLATE_MARKER).exists() => {}
        Err(e) => panic!(
            "could not move the template cluster into place at {}: {e}",
            path.display()
        ),
    }
    path
}

/// A template being built in `psqlpool-pgtemplate-build-<pid>-<rand>/`; dropping it stops its
/// server and removes the directory, so a failed build leaves nothing behind.
struct TemplateBuild {
    dir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    bin_dir: PathBuf,
    account: Option<Account>,
}

impl TemplateBuild {
    fn new(tmp: &Path, bin_dir: &Path, account: Option<Account>) -> TemplateBuild {
        let dir = tmp.join(format!(
            "{TEMPLATE_BUILD_PREFIX}{}-{:016x}",
            std::process::id(),
            sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let build = TemplateBuild {
            data: dir.join("data"),
            sock: dir.join("sock"),
            dir,
            bin_dir: bin_dir.to_path_buf(),
            account,
        };
        std::fs::create_dir(&build.sock)
            .unwrap_or_else(|e| panic!("creating {}: {e}", build.sock.display()));
        sys::chown_tree(&build.dir, account);
        build
    }

    fn run(&self, version: &str) {
        sys::run(
            sys::pg_command(self.bin_dir.join("initdb"), self.account)
                .arg("-D")
                .arg(&self.data)
                .args([
                    "-A",
                    "trust",
                    "--nosync",
                    "-U",
                    ADMIN_USER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]),
            &format!("initdb ({version})"),
        );
        let hba = self.data.join("pg_hba.conf");
        std::fs::write(&hba, roles::hba_conf())
            .unwrap_or_else(|e| panic!("writing {}: {e}", hba.display()));
        let conf = self.data.join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .unwrap_or_else(|e| panic!("opening {}: {e}", conf.display()));
        file.write_all(BASE_CONF.as_bytes())
            .unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        // No TCP while building: the socket in our private dir cannot collide with anyone.
        write_instance_conf(&self.data, &self.sock, "", 5432, self.account);
        sys::chown_tree(&self.dir, self.account);

        let log = self.dir.join("server.log");
        let started = self
            .pg_ctl()
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output();
        if !started.as_ref().is_ok_and(|o| o.status.success()) {
            panic!(
                "starting the template cluster failed ({started:?}); server log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let mut setup = sys::pg_command(bins::find_psql(), None);
        setup
            .args(["-X", "-q", "-w", "-h"])
            .arg(&self.sock)
            .args(["-p", "5432", "-U", ADMIN_USER, "-d", "postgres", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = setup
            .spawn()
            .unwrap_or_else(|e| panic!("could not run psql: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(roles::setup_sql().as_bytes());
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for psql: {e}"));
        if !out.status.success() {
            panic!(
                "creating the test roles failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        sys::run(
            self.pg_ctl()
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
            "stopping the template cluster",
        );
        for leftover in [INSTANCE_CONF, "postmaster.opts"] {
            let _ = std::fs::remove_file(self.data.join(leftover));
        }
        let marker = self.data.join(TEMPLATE_MARKER);
        std::fs::write(&marker, format!("{version}\n"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", marker.display()));
        sys::chown_tree(&marker, self.account);
    }

    fn pg_ctl(&self) -> Command {
        sys::pg_command(self.bin_dir.join("pg_ctl"), self.account)
    }
}

impl Drop for TemplateBuild {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = self
                .pg_ctl()
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-t", "20", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
