//! The URL form of a DSN: `postgresql://[user[:password]@][host[:port],...][/dbname][?k=v&...]`.

use super::options::parse_port;
use super::params::Origin;
use super::{Config, Host, non_empty};
use crate::error::ConfigError;

/// The URL prefixes libpq accepts (case-sensitive, as in libpq).
pub(super) const URL_SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];

/// `mysql://…` and friends: name the scheme instead of failing with a confusing key=value
/// error. Only a plain scheme token is echoed.
pub(super) fn foreign_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let plain = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    plain.then_some(scheme)
}

/// RFC 3986 percent-decoding (`+` stays `+`, as in libpq). `%00` decodes to NUL, which
/// [`Config::validate`] then rejects.
fn percent_decode(s: &str, part: &str) -> Result<Vec<u8>, ConfigError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hi = bytes.next().and_then(hex_val);
        let lo = bytes.next().and_then(hex_val);
        match (hi, lo) {
            (Some(h), Some(l)) => out.push((h << 4) | l),
            _ => {
                return Err(ConfigError::new(format!(
                    "invalid percent-encoding in URL {part}"
                )));
            }
        }
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode_str(s: &str, part: &str) -> Result<String, ConfigError> {
    String::from_utf8(percent_decode(s, part)?)
        .map_err(|_| ConfigError::new(format!("URL {part} is not valid UTF-8")))
}

/// Parses what follows `postgresql://`:
/// `[user[:password]@][host[:port][,host[:port]...]][/dbname][?key=value&...]`.
pub(super) fn parse_url(rest: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::new();
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The last '@' before the query ends the credentials, so a password with an unencoded
    // '/' or '@' still parses.
    let (userinfo, hostpart) = match before_query.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, before_query),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        cfg.user = non_empty(&percent_decode_str(user, "user")?);
        if let Some(p) = password {
            let p = percent_decode(p, "password")?;
            cfg.password = (!p.is_empty()).then_some(p);
        }
    }
    // Without credentials, "a:b" could be "user:password" missing its "@host": never echo
    // a port then.
    let echo = userinfo.is_some();

    let (netloc, path) = match hostpart.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (hostpart, None),
    };
    parse_netloc(&mut cfg, netloc, echo)?;
    if let Some(path) = path {
        cfg.dbname = non_empty(&percent_decode_str(path, "dbname")?);
    }

    if let Some(query) = query {
        for (n, param) in query.split('&').enumerate() {
            if param.is_empty() {
                continue;
            }
            let Some((key, value)) = param.split_once('=') else {
                // Not echoed: a password with an unencoded '&' would land here.
                return Err(ConfigError::new(format!(
                    "missing \"=\" in URL query parameter number {}",
                    n + 1
                )));
            };
            let key = percent_decode_str(key, "query parameter name")?;
            let value = percent_decode(value, &format!("query parameter \"{key}\""))?;
            cfg.set_param(&key, &value, Origin::Url)?;
        }
    }
    Ok(cfg)
}

/// `host[:port][,host[:port]...]`, hosts possibly `[ipv6]`, all parts percent-decoded.
fn parse_netloc(cfg: &mut Config, netloc: &str, echo: bool) -> Result<(), ConfigError> {
    let mut entries: Vec<(String, &str)> = Vec::new();
    let mut rest = netloc;
    loop {
        let (host, after) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(ConfigError::new("missing \"]\" after IPv6 address in URL"));
            };
            (addr, after)
        } else {
            let end = rest.find([':', ',']).unwrap_or(rest.len());
            rest.split_at(end)
        };
        let (port, after) = match after.strip_prefix(':') {
            Some(p) => p.split_at(p.find(',').unwrap_or(p.len())),
            None => ("", after),
        };
        entries.push((percent_decode_str(host, "host")?, port));
        if after.is_empty() {
            break;
        }
        let Some(next) = after.strip_prefix(',') else {
            return Err(ConfigError::new(
                "unexpected character after IPv6 address in URL (expected \":\", \",\" or \"/\")",
            ));
        };
        rest = next;
    }
    // libpq stores the host and port lists only when non-empty: a lone empty host (and a
    // lone empty port) leaves them unset, for the environment to fill.
    if let [(host, port)] = entries.as_slice() {
        if host.is_empty() {
            cfg.hosts.clear();
        } else {
            cfg.hosts = vec![Host::from_libpq(host)];
        }
        cfg.ports = if port.is_empty() {
            Vec::new()
        } else {
            vec![parse_port(port, " in URL", echo)?]
        };
        return Ok(());
    }
    cfg.hosts = entries.iter().map(|(h, _)| Host::from_libpq(h)).collect();
    cfg.ports = entries
        .iter()
        .map(|(_, p)| parse_port(p, " in URL", echo))
        .collect::<Result<_, _>>()?;
    Ok(())
}
