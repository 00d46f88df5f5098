//! A throwaway PgBouncer in front of a [`Cluster`], its config written at test time.
//!
//! PgBouncer refuses to run as root, so (as the server) it runs as the `postgres` OS user when
//! the tests run as root. Clients log in with `auth_type = trust` as [`TRUST_USER`], which the
//! cluster also trusts over TCP, so no password is involved anywhere. A watcher shell stops it
//! when the test process is gone, however it ends; [`Bouncer`]'s `Drop` stops it at once.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::roles::{DB_NAME, TRUST_USER};
use crate::sys::{self, Account};

/// PgBouncer's `pool_mode`: when a server connection goes back to PgBouncer's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// When the client disconnects.
    Session,
    /// After each transaction (ReadyForQuery with status idle).
    Transaction,
    /// After each statement; multi-statement transactions are refused.
    Statement,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// Where the `pgbouncer` binary is: `PGBOUNCER` if set, else `/usr/sbin/pgbouncer` (Debian's
/// package), else `pgbouncer` on `PATH`. `None` when there is none.
pub fn find_pgbouncer() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGBOUNCER") {
        return Some(PathBuf::from(p));
    }
    let debian = Path::new("/usr/sbin/pgbouncer");
    if debian.exists() {
        return Some(debian.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.exists())
}

/// A running PgBouncer on 127.0.0.1 in front of one cluster, stopped and deleted on drop.
#[derive(Debug)]
pub struct Bouncer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    account: Option<Account>,
    /// The watcher shell of the running PgBouncer, reaped when it is stopped.
    watcher: Mutex<Option<Child>>,
}

impl Bouncer {
    /// Starts PgBouncer in `mode` with `pool_size` server connections per database/user pair
    /// in front of `cluster`, otherwise with PgBouncer's defaults (notably no
    /// `ignore_startup_parameters` and, before 1.21, no prepared statement support).
    ///
    /// # Panics
    /// When `pgbouncer` is not installed (`apt-get install -y pgbouncer`), or it does not
    /// accept connections within 10 s (the message includes its log).
    pub fn start(cluster: &Cluster, mode: PoolMode, pool_size: usize) -> Bouncer {
        let bin = find_pgbouncer().unwrap_or_else(|| {
            panic!("pgbouncer is not installed: `apt-get install -y pgbouncer` (or set PGBOUNCER)")
        });
        let account = sys::server_account();
        let dir = std::env::temp_dir().join(format!(
            "psqlpool-bouncer-{}-{:016x}",
            std::process::id(),
            sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let port = crate::cluster::free_port();
        let conf = format!(
            "[databases]\n\
             {DB_NAME} = host={host} port={pg_port} dbname={DB_NAME}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 1000\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            host = cluster.host(),
            pg_port = cluster.port(),
            dir = dir.display(),
            mode = mode.as_str(),
        );
        write(&dir.join("pgbouncer.ini"), &conf);
        write(
            &dir.join("userlist.txt"),
            &format!("\"{TRUST_USER}\" \"\"\n"),
        );
        sys::chown_tree(&dir, account);
        let bouncer = Bouncer {
            bin,
            dir,
            port,
            account,
            watcher: Mutex::new(None),
        };
        bouncer.launch();
        bouncer
    }

    /// The port PgBouncer listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL through PgBouncer as [`TRUST_USER`] to the test database.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{TRUST_USER}@127.0.0.1:{}/{DB_NAME}",
            self.port
        )
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// Stops PgBouncer at once (SIGTERM: immediate shutdown, every client and server
    /// connection closed) and starts it again on the same port.
    pub fn restart(&self) {
        self.stop("-TERM");
        self.launch();
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pgbouncer.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn stop(&self, signal: &str) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while sys::pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A pidfile left behind would make the next start refuse.
        let _ = std::fs::remove_file(self.dir.join("pgbouncer.pid"));
        // The watcher notices within its 0.2 s poll and exits.
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut child) = watcher {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs PgBouncer under a watcher shell that kills it once the test process is gone (a
    /// test binary never drops its statics, and a killed one drops nothing).
    fn launch(&self) {
        let owner = std::process::id().to_string();
        let conf = self.dir.join("pgbouncer.ini");
        let mut cmd = sys::pg_command("sh", self.account);
        cmd.arg("-c")
            .arg(
                r#"owner=$1; shift; "$@" & child=$!
while [ -d "/proc/$owner" ] && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
kill -KILL "$child" 2>/dev/null; wait"#,
            )
            .arg("sh")
            .arg(&owner)
            .arg(&self.bin)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", self.bin.display()));
        // A poisoned lock only means a panic elsewhere; the child must be kept either way.
        *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "pgbouncer did not listen on 127.0.0.1:{} within 10 s; its log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        self.stop("-KILL");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
