//! Helpers for option values: integers, timeouts, host and port lists, and the server's own
//! splitting of `options`.

use std::time::Duration;

use super::{DEFAULT_PORT, Host};
use crate::error::ConfigError;

/// libpq raises `connect_timeout` values of 1 to 2 seconds: with whole-second rounding a
/// 1-second timeout could fire almost at once (fe-connect.c, `pqConnectDBComplete`).
const MIN_CONNECT_TIMEOUT_SECS: u64 = 2;

/// libpq's `parse_int_param`: an `int`, surrounding whitespace allowed, nothing else.
pub(super) fn parse_int(v: &str, context: &str) -> Result<i32, ConfigError> {
    v.trim()
        .parse::<i32>()
        .map_err(|_| ConfigError::new(format!("invalid integer value \"{v}\" {context}")))
}

/// libpq: whole seconds; zero or negative means no timeout; 1 is raised to 2.
pub(super) fn parse_connect_timeout(
    v: &str,
    context: &str,
) -> Result<Option<Duration>, ConfigError> {
    let n = parse_int(v, context)?;
    Ok(u64::try_from(n)
        .ok()
        .filter(|&s| s > 0)
        .map(|s| Duration::from_secs(s.max(MIN_CONNECT_TIMEOUT_SECS))))
}

/// A comma-separated host list. An empty string is "no hosts"; empty entries in a longer list
/// are default-host placeholders (libpq).
pub(super) fn parse_host_list(v: &str) -> Vec<Host> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(Host::from_libpq).collect()
}

/// A comma-separated port list. An empty string is "no ports"; empty entries are 5432
/// (libpq's `DEF_PGPORT`, not `PGPORT`).
pub(super) fn parse_port_list(v: &str, suffix: &str) -> Result<Vec<u16>, ConfigError> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',').map(|p| parse_port(p, suffix, true)).collect()
}

/// One port, 1..=65535. `echo` is false when the text might be a piece of a password.
pub(super) fn parse_port(p: &str, suffix: &str, echo: bool) -> Result<u16, ConfigError> {
    let p = p.trim();
    if p.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ if echo => Err(ConfigError::new(format!("invalid port \"{p}\"{suffix}"))),
        _ => Err(ConfigError::new(format!(
            "invalid port{suffix} (value not shown: it may be part of a password; \
             percent-encode special characters in the password)"
        ))),
    }
}

/// libpq's `isspace` set.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Escapes `v` so the server's `options` splitting ([`split_options`]) reads it back as one
/// argument: whitespace and `\` get a `\` in front.
pub(super) fn escape_option_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c == '\\' || is_space(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits `options` the way the server does (`pg_split_opts`): on whitespace, with `\`
/// escaping the next character.
pub(super) fn split_options(s: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next_if(|c| !is_space(*c)) {
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    arg.push(escaped);
                }
            } else {
                arg.push(c);
            }
        }
        args.push(arg);
    }
}

/// The server's switches that take an argument (postgres.c, `process_postgres_switches`:
/// "B:bC:c:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:").
const SWITCHES_WITH_ARG: &str = "BCcDdfhkNprStvW-";

/// True when `options` sets `client_encoding` through `-c name=value`, `-cname=value`,
/// `--name=value` or a cluster such as `-ec name=value`, in any case and with `-` for `_`.
pub(super) fn options_set_client_encoding(options: &str) -> bool {
    let args = split_options(options);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(switches) = arg.strip_prefix('-') else {
            continue;
        };
        for (i, c) in switches.char_indices() {
            if !SWITCHES_WITH_ARG.contains(c) {
                continue;
            }
            let attached = switches.get(i + c.len_utf8()..).unwrap_or("");
            let optarg = if attached.is_empty() {
                it.next().map(String::as_str).unwrap_or("")
            } else {
                attached
            };
            if matches!(c, 'c' | '-') {
                let name = optarg.split('=').next().unwrap_or("");
                if name.trim().to_ascii_lowercase().replace('-', "_") == "client_encoding" {
                    return true;
                }
            }
            break;
        }
    }
    false
}
