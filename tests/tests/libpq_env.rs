//! libpq's environment variables against the real server: a variable demanding a protection
//! the client cannot give (channel binding, GSSAPI encryption) refuses the connection before
//! a single byte reaches the server, as the same setting in a DSN is refused. Without that, a
//! role authenticated with `password` (cleartext) would send its password.
//!
//! Environment variables are process-global, and setting them in a threaded test binary is
//! `unsafe` (and racy). So each case runs in a child process: this test binary again, with
//! only the case's test selected, the case's variables set and every other `PG*` variable
//! removed. The child connects through a proxy owned by the parent, which counts the TCP
//! connections that reached it.

mod proxy_support;

use std::process::Command;

use pg_harness::{Role, cluster};
use pgwire_lite::{Config, Connection, Error};
use proxy_support::FaultProxy;

/// Set in the child only: the DSN to connect with.
const CHILD_DSN: &str = "PSQLPOOL_LIBPQ_ENV_CHILD_DSN";
/// Prefix of the line on which the child reports what happened.
const OUTCOME: &str = "libpq-env outcome: ";

/// The cleartext-password role's DSN through the proxy; the proxy's connection count is what
/// shows whether anything (the password included) was sent.
fn cleartext_dsn(proxy: &FaultProxy) -> String {
    let role = Role::Password;
    format!(
        "postgresql://{}:{}@127.0.0.1:{}/{}?connect_timeout=5",
        pg_harness::percent_encode(role.user()),
        pg_harness::percent_encode(role.password().unwrap_or_default()),
        proxy.port(),
        cluster().db_name()
    )
}

/// Child side: connects with the process environment as it was given, and prints what
/// happened. The parent asserts on it.
fn child_connect(dsn: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let outcome = runtime.block_on(async {
        let config: Config = match dsn.parse() {
            Ok(c) => c,
            Err(e) => return format!("DSN refused: {e}"),
        };
        match Connection::connect(&config).await {
            Ok(mut conn) => match conn.query_one("SELECT current_user::text", &[]).await {
                Ok(row) => format!("connected as {}", row.get::<_, &str>(0)),
                Err(e) => format!("connected, then: {e}"),
            },
            Err(Error::Config(e)) => format!("config error: {e}"),
            Err(e) => format!("other error: {e}"),
        }
    });
    println!("{OUTCOME}{outcome}");
}

/// Parent side: runs the test `name` of this binary in a child whose `PG*` environment is
/// exactly `vars`, and returns the child's outcome line.
fn run_child(name: &str, dsn: &str, vars: &[(&str, &str)]) -> String {
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {name} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
        .lines()
        // libtest may print "test name ... " on the same line first.
        .find_map(|l| l.split_once(OUTCOME))
        .map(|(_, outcome)| outcome.to_owned())
        .unwrap_or_else(|| panic!("child {name} reported nothing\n{stdout}\n{stderr}"))
}

/// Runs one case: in the child, connects; in the parent, starts the proxy and the child and
/// returns (outcome, connections the proxy accepted). `None` in the child, and when the
/// throwaway cluster's roles are not available.
fn case(name: &str, vars: &[(&str, &str)]) -> Option<(String, usize)> {
    if let Some(dsn) = std::env::var_os(CHILD_DSN) {
        child_connect(&dsn.to_string_lossy());
        return None;
    }
    if !cluster().require_roles() {
        return None;
    }
    let proxy = FaultProxy::start((cluster().host(), cluster().port()));
    let outcome = run_child(name, &cleartext_dsn(&proxy), vars);
    Some((outcome, proxy.accepted()))
}

#[test]
fn cleartext_role_connects_when_nothing_demands_more() {
    // The control: the role, the proxy and the child really connect (and send the password
    // in cleartext, which is what the refusals below must prevent).
    let Some((outcome, accepted)) = case("cleartext_role_connects_when_nothing_demands_more", &[])
    else {
        return;
    };
    assert_eq!(outcome, format!("connected as {}", Role::Password.user()));
    assert!(accepted >= 1, "accepted {accepted}");
}

#[test]
fn pgchannelbinding_require_is_refused_before_the_password() {
    let Some((outcome, accepted)) = case(
        "pgchannelbinding_require_is_refused_before_the_password",
        &[("PGCHANNELBINDING", "require")],
    ) else {
        return;
    };
    // Channel binding needs TLS, which this server lacks: refused at the first authentication
    // request, before any password goes out (libpq's words).
    assert!(
        outcome.starts_with("other error: authentication failed: connection to server at ")
            && outcome.ends_with("failed: channel binding required, but SSL not in use"),
        "{outcome}"
    );
    assert!(accepted <= 1, "accepted {accepted}");
    // The same demand in the DSN means the same.
    let dsn = format!("{}?channel_binding=require", cluster().url(Role::Password));
    assert_eq!(
        dsn.parse::<Config>().map(|c| c.get_channel_binding()),
        Ok(pgwire_lite::ChannelBinding::Require)
    );
}

#[test]
fn pggssencmode_require_is_refused_before_the_password() {
    let Some((outcome, accepted)) = case(
        "pggssencmode_require_is_refused_before_the_password",
        &[("PGGSSENCMODE", "require")],
    ) else {
        return;
    };
    assert_eq!(
        outcome,
        "config error: gssencmode=require: GSSAPI encryption is not supported (from PGGSSENCMODE)"
    );
    assert_eq!(accepted, 0, "the server was contacted");
    let dsn = format!("{}?gssencmode=require", cluster().url(Role::Password));
    assert_eq!(
        dsn.parse::<Config>().map_err(|e| e.to_string()),
        Err("gssencmode=require: GSSAPI encryption is not supported".into())
    );
}

#[test]
fn relaxing_variables_still_connect() {
    // Variables for what we do not implement that only relax things are accepted, as their
    // DSN keys are.
    let Some((outcome, accepted)) = case(
        "relaxing_variables_still_connect",
        &[
            ("PGCHANNELBINDING", "disable"),
            ("PGGSSENCMODE", "disable"),
            ("PGSSLMODE", "disable"),
        ],
    ) else {
        return;
    };
    assert_eq!(outcome, format!("connected as {}", Role::Password.user()));
    assert!(accepted >= 1, "accepted {accepted}");
}
