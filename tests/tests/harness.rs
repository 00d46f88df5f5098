//! Self-tests of the throwaway-PostgreSQL harness: the cluster starts, the roles and pg_hba
//! methods are what the auth suites rely on, both transports accept, and nothing outlives the
//! test process.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pg_harness::{Cluster, Role, cluster};

#[test]
fn select_1_over_the_socket() {
    let pg = cluster();
    assert_eq!(pg.psql("SELECT 1"), "1");
    let version: u32 = pg
        .psql("SHOW server_version_num")
        .parse()
        .expect("numeric server_version_num");
    assert!(version >= 100_000, "PostgreSQL {version} is too old");
    assert_eq!(pg.psql("SELECT current_database()"), pg.db_name());
}

#[test]
fn roles_exist_with_the_right_password_kinds() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let rows = pg.psql(
        "SELECT rolname, coalesce(split_part(rolpassword, '$', 1), 'none') \
         FROM pg_authid ORDER BY rolname",
    );
    let kinds: HashMap<&str, &str> = rows.lines().filter_map(|l| l.split_once('|')).collect();
    for role in Role::ALL {
        let expected = match role {
            Role::Trust => "none",
            Role::Md5 => {
                // md5 verifiers have no '$': the whole "md5<hex>" comes back.
                let kind = kinds.get(role.user()).expect("md5_user exists");
                assert!(kind.starts_with("md5") && kind.len() == 35, "{kind}");
                continue;
            }
            _ => "SCRAM-SHA-256",
        };
        assert_eq!(kinds.get(role.user()), Some(&expected), "{role:?}: {rows}");
    }
}

#[test]
fn hba_rules_give_each_role_its_method() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let errors = pg.psql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL");
    assert_eq!(errors, "0");
    let rules = pg.psql(
        "SELECT type, array_to_string(user_name, ','), coalesce(address, '-'), auth_method \
         FROM pg_hba_file_rules ORDER BY line_number",
    );
    let rules: Vec<Vec<&str>> = rules.lines().map(|l| l.split('|').collect()).collect();
    // First match wins: the first rule naming the role (or `all`) decides.
    let method_for = |kind: &str, user: &str| -> String {
        rules
            .iter()
            .find(|r| r[0] == kind && (r[1] == user || r[1] == "all"))
            .map(|r| r[3].to_string())
            .unwrap_or_else(|| panic!("no {kind} rule for {user}: {rules:?}"))
    };
    for role in Role::ALL {
        assert_eq!(
            method_for("host", role.user()),
            role.tcp_method(),
            "{role:?}"
        );
        assert_eq!(
            method_for("local", role.user()),
            role.local_method(),
            "{role:?}"
        );
    }
    assert_eq!(method_for("local", "postgres"), "trust");
    assert_eq!(method_for("host", "postgres"), "scram-sha-256");
    assert_eq!(method_for("host", "a_role_a_test_made"), "scram-sha-256");
    assert!(
        rules
            .iter()
            .filter(|r| r[0] == "host")
            .all(|r| r[2] == "127.0.0.1"),
        "TCP rules must only admit 127.0.0.1: {rules:?}"
    );
}

#[test]
fn tcp_and_socket_both_accept() {
    let pg = cluster();
    TcpStream::connect((pg.host(), pg.port())).expect("TCP connect");
    assert_eq!(
        pg.psql_with(&pg.admin_url(), "SELECT 1")
            .expect("psql over TCP"),
        "1"
    );
    if !pg.require_roles() {
        return;
    }
    let socket = pg.socket_dir().join(format!(".s.PGSQL.{}", pg.port()));
    UnixStream::connect(&socket).expect("Unix socket connect");
    // Over the socket there is no server address.
    assert_eq!(pg.psql("SELECT inet_server_addr() IS NULL"), "t");
    assert_eq!(
        pg.psql_with(&pg.admin_url(), "SELECT host(inet_server_addr())")
            .expect("psql over TCP"),
        "127.0.0.1"
    );
    assert_eq!(
        pg.psql_with(&pg.socket_url(Role::Scram), "SELECT current_user")
            .expect("scram over the socket"),
        "scram_user"
    );
}

#[test]
fn every_role_logs_in_with_libpq_and_wrong_passwords_fail() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    for role in Role::ALL {
        for url in [pg.url(role), pg.socket_url(role)] {
            let who = pg
                .psql_with(&url, "SELECT current_user")
                .unwrap_or_else(|e| panic!("{role:?} via {url}: {e}"));
            assert_eq!(who, role.user(), "{url}");
        }
        if role.password().is_some() {
            let bad = pg_harness::percent_encode(&format!("{}x", role.password().unwrap_or("")));
            let url = format!(
                "postgresql://{}:{bad}@{}:{}/{}",
                role.user(),
                pg.host(),
                pg.port(),
                pg.db_name()
            );
            let err = pg
                .psql_with(&url, "SELECT 1")
                .expect_err("a wrong password must be refused");
            assert!(
                err.contains("password authentication failed"),
                "{role:?}: {err}"
            );
        }
    }
    // The server stored the SASLprepped password: the prepared form logs in too (libpq preps
    // both to the same bytes), which shows the raw one only works because of SASLprep.
    let prepared = format!(
        "postgresql://{}:{}@{}:{}/{}",
        pg_harness::SASL_USER,
        pg_harness::percent_encode(pg_harness::SASL_PASS_PREPARED),
        pg.host(),
        pg.port(),
        pg.db_name()
    );
    assert_eq!(
        pg.psql_with(&prepared, "SELECT current_user")
            .expect("prepared password"),
        "sasl_user"
    );
    assert_ne!(pg_harness::SASL_PASS, pg_harness::SASL_PASS_PREPARED);
}

#[test]
fn test_roles_can_create_tables_in_the_test_database() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let table = pg.unique_name("harness_t");
    let out = pg
        .psql_with(
            &pg.url(Role::Scram),
            &format!("CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (7); SELECT id FROM {table}"),
        )
        .expect("scram_user may create tables");
    assert_eq!(out, "7");
    pg.psql(&format!("DROP TABLE {table}"));
}

#[test]
fn external_handle_reads_database_url() {
    let ext = Cluster::external("postgresql://u:p%40ss@db.invalid:6543/other".to_string());
    assert!(ext.is_external());
    assert!(!ext.require_roles());
    assert_eq!((ext.host(), ext.port()), ("db.invalid", 6543));
    assert_eq!(
        ext.admin_url(),
        "postgresql://u:p%40ss@db.invalid:6543/other"
    );
}

#[test]
#[should_panic(expected = "needs the throwaway cluster")]
fn external_handle_refuses_the_special_roles() {
    let ext = Cluster::external("postgresql://u@db.invalid/x".to_string());
    let _ = ext.url(Role::Scram);
}

#[test]
fn private_cluster_stops_starts_restarts_and_vanishes_on_drop() {
    if !cluster().require_roles() {
        return;
    }
    let pg = Cluster::start_throwaway();
    let dir = pg.data_dir().parent().expect("cluster dir").to_path_buf();
    let first = pg.pid_of_postmaster().expect("running");
    assert_ne!(
        Some(first),
        cluster().pid_of_postmaster(),
        "a separate server"
    );

    pg.restart();
    let second = pg.pid_of_postmaster().expect("running after restart");
    assert_ne!(first, second);
    assert_eq!(pg.psql("SELECT 1"), "1");

    pg.stop();
    assert_eq!(pg.pid_of_postmaster(), None);
    assert!(TcpStream::connect((pg.host(), pg.port())).is_err());
    assert!(
        gone_soon(second),
        "postmaster {second} still running after stop"
    );

    pg.start();
    assert_eq!(pg.psql("SELECT 1"), "1");
    let third = pg.pid_of_postmaster().expect("running after start");

    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        gone_soon(third),
        "postmaster {third} still running after drop"
    );
}

#[test]
fn reaper_cleans_up_after_the_process_is_killed() {
    if !cluster().require_roles() {
        return;
    }
    let (mut child, info) = spawn_throwaway(None);
    let (dir, postmaster) = local_info(&info);
    assert!(process_running(postmaster) && dir.exists());
    child.kill().expect("SIGKILL the child");
    // Reap it: a zombie still answers `kill -0`, and the reaper would keep waiting.
    child.wait().expect("wait");
    assert_cleaned_up(&dir, postmaster);
}

#[test]
fn reaper_cleans_up_after_a_normal_exit() {
    if !cluster().require_roles() {
        return;
    }
    let (mut child, info) = spawn_throwaway(None);
    let (dir, postmaster) = local_info(&info);
    drop(child.stdin.take()); // EOF: the child returns from main
    assert!(child.wait().expect("wait").success());
    assert_cleaned_up(&dir, postmaster);
}

#[test]
fn database_url_makes_the_shared_cluster_external() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let url = pg.url(Role::Scram);
    let (mut child, info) = spawn_throwaway(Some(&url));
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
    assert_eq!(info.get("external").map(String::as_str), Some("true"));
    assert_eq!(info.get("admin_url"), Some(&url));
    assert!(
        !info.contains_key("data_dir"),
        "no cluster of its own: {info:?}"
    );
    assert!(info.get("server_version").is_some_and(|v| !v.is_empty()));
}

/// Runs the `pg-throwaway` binary (a stand-in for a test binary using the shared cluster) and
/// reads its `key=value` lines up to `ready`.
fn spawn_throwaway(database_url: Option<&str>) -> (Child, HashMap<String, String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg-throwaway"));
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    match database_url {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    let mut child = cmd.spawn().expect("spawn pg-throwaway");
    let stdout = child.stdout.take().expect("stdout");
    let mut info = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        if line == "ready" {
            return (child, info);
        }
        if let Some((k, v)) = line.split_once('=') {
            info.insert(k.to_string(), v.to_string());
        }
    }
    let status = child.wait();
    panic!("pg-throwaway exited before `ready` ({status:?}); got {info:?}");
}

fn local_info(info: &HashMap<String, String>) -> (PathBuf, u32) {
    let data = PathBuf::from(info.get("data_dir").expect("data_dir"));
    let dir = data.parent().expect("cluster dir").to_path_buf();
    let pid = info
        .get("postmaster_pid")
        .and_then(|p| p.parse().ok())
        .expect("postmaster_pid");
    (dir, pid)
}

fn assert_cleaned_up(dir: &Path, postmaster: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while (dir.exists() || process_running(postmaster)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !process_running(postmaster),
        "postmaster {postmaster} survived"
    );
    assert!(!dir.exists(), "{} survived", dir.display());
    // And no postgres process anywhere still names that directory.
    let stray = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .expect("ps");
    let stray = String::from_utf8_lossy(&stray.stdout);
    let needle = dir.to_string_lossy();
    assert!(
        !stray
            .lines()
            .any(|l| l.contains(needle.as_ref()) && !l.contains("psqlpool-reaper")),
        "stray process on {needle}:\n{stray}"
    );
}

/// Waits up to 5 s for `pid` to stop running: pg_ctl returns when the pid file is gone, a moment
/// before the postmaster process itself has exited.
fn gone_soon(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    !process_running(pid)
}

/// Alive and not a zombie (an exited postmaster may wait a moment for init to reap it).
fn process_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}
