//! A real streaming standby of a throwaway cluster: `pg_basebackup -R` from the primary, started
//! as a second server on its own port.

use std::path::PathBuf;
use std::process::Stdio;

use crate::cluster::{Cluster, free_port};
use crate::reaper::{self, CLUSTER_PREFIX};
use crate::sys::{self, Account};

/// A hot standby streaming from a throwaway [`Cluster`], stopped (immediately) and deleted on
/// drop, and by the reaper if the process dies first.
#[derive(Debug)]
pub struct Standby {
    dir: PathBuf,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    account: Option<Account>,
}

impl Standby {
    /// Lets the primary accept replication connections on its Unix socket (a line appended to
    /// its `pg_hba.conf`, then a reload), takes a base backup with `-R` (standby.signal and
    /// `primary_conninfo`), and starts it on a free port on 127.0.0.1. Returns once it accepts
    /// read-only connections. Throwaway primary only.
    ///
    /// # Panics
    /// When a step fails (the message includes the server log).
    pub fn start(primary: &Cluster) -> Standby {
        let account = sys::server_account();
        let bin_dir = primary.bin_dir().to_path_buf();
        let hba = primary.data_dir().join("pg_hba.conf");
        let mut lines = std::fs::read_to_string(&hba)
            .unwrap_or_else(|e| panic!("reading {}: {e}", hba.display()));
        if !lines.contains("local replication all trust") {
            // First match wins: replication lines must come before anything that refuses.
            lines.insert_str(0, "local replication all trust\n");
            std::fs::write(&hba, lines)
                .unwrap_or_else(|e| panic!("writing {}: {e}", hba.display()));
            sys::chown_tree(&hba, account);
            primary.psql("SELECT pg_reload_conf()");
        }
        let dir = std::env::temp_dir().join(format!(
            "{CLUSTER_PREFIX}{}-{:016x}",
            std::process::id(),
            sys::random_u64()
        ));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let standby = Standby {
            data_dir: dir.join("data"),
            log_file: dir.join("server.log"),
            dir,
            bin_dir,
            port: free_port(),
            account,
        };
        reaper::spawn_reaper(
            &standby.dir,
            &standby.data_dir,
            &standby.bin_dir.join("pg_ctl"),
            account,
        );
        std::fs::create_dir(standby.dir.join("sock"))
            .unwrap_or_else(|e| panic!("creating the socket dir: {e}"));
        sys::chown_tree(&standby.dir, account);
        sys::run(
            sys::pg_command(standby.bin_dir.join("pg_basebackup"), account)
                .arg("-D")
                .arg(&standby.data_dir)
                .arg("-h")
                .arg(primary.socket_dir())
                .args(["-p", &primary.port().to_string()])
                .args(["-U", "postgres", "-R", "-X", "stream", "-c", "fast"]),
            "pg_basebackup",
        );
        // postgresql.auto.conf is read last: these override the primary's port and socket.
        let auto = standby.data_dir.join("postgresql.auto.conf");
        let mut conf = std::fs::read_to_string(&auto).unwrap_or_default();
        conf.push_str(&format!(
            "port = {}\nunix_socket_directories = '{}'\nlisten_addresses = '127.0.0.1'\n",
            standby.port,
            standby.dir.join("sock").display()
        ));
        std::fs::write(&auto, conf).unwrap_or_else(|e| panic!("writing {}: {e}", auto.display()));
        sys::chown_tree(&auto, account);
        let out = sys::pg_command(standby.bin_dir.join("pg_ctl"), account)
            .arg("-D")
            .arg(&standby.data_dir)
            .arg("-l")
            .arg(&standby.log_file)
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("could not run pg_ctl: {e}"));
        if !out.status.success() {
            panic!(
                "the standby did not start; its log:\n{}",
                std::fs::read_to_string(&standby.log_file).unwrap_or_default()
            );
        }
        standby
    }

    /// `pg_ctl promote -w`: returns once the standby is a primary accepting writes.
    pub fn promote(&self) {
        sys::run(
            sys::pg_command(self.bin_dir.join("pg_ctl"), self.account)
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-w", "-t", "60", "promote"]),
            "pg_ctl promote",
        );
    }

    /// The standby's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        // Best effort: never panic in drop. The reaper retries when the process ends.
        let _ = sys::pg_command(self.bin_dir.join("pg_ctl"), self.account)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-t", "20", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
