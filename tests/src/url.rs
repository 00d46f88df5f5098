//! Building connection URLs for the throwaway cluster and reading host/port out of `DATABASE_URL`.

/// Percent-encodes everything but RFC 3986 unreserved characters, so any user name, password or
/// socket path is safe in any URL component.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; malformed escapes are kept literally (this only reads `DATABASE_URL`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `postgresql://user[:password]@host:port/db`, every part percent-encoded.
pub(crate) fn tcp_url(
    user: &str,
    password: Option<&str>,
    host: &str,
    port: u16,
    db: &str,
) -> String {
    format!(
        "postgresql://{}@{host}:{port}/{}",
        userinfo(user, password),
        percent_encode(db)
    )
}

/// `postgresql://user[:password]@/db?host=<socket dir>&port=N` (libpq's form for Unix sockets).
pub(crate) fn socket_url(
    user: &str,
    password: Option<&str>,
    socket_dir: &str,
    port: u16,
    db: &str,
) -> String {
    format!(
        "postgresql://{}@/{}?host={}&port={port}",
        userinfo(user, password),
        percent_encode(db),
        percent_encode(socket_dir)
    )
}

fn userinfo(user: &str, password: Option<&str>) -> String {
    match password {
        Some(p) => format!("{}:{}", percent_encode(user), percent_encode(p)),
        None => percent_encode(user),
    }
}

/// Host and port of a `DATABASE_URL` (URL or `key=value` form), with libpq's defaults
/// (`localhost`, 5432) for missing parts. Only the first host of a multi-host URL is returned.
pub(crate) fn host_port(url: &str) -> (String, u16) {
    let default_host = || "localhost".to_string();
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        // key=value form
        let mut host = default_host();
        let mut port = 5432;
        for pair in url.split_whitespace() {
            match pair.split_once('=') {
                Some(("host", v)) if !v.is_empty() => host = v.trim_matches('\'').to_string(),
                Some(("port", v)) => port = v.trim_matches('\'').parse().unwrap_or(5432),
                _ => {}
            }
        }
        return (host, port);
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let first = hosts.split(',').next().unwrap_or("");
    let (host, port) = if let Some(v6) = first.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').unwrap_or("")),
            None => (v6.to_string(), ""),
        }
    } else {
        match first.rsplit_once(':') {
            Some((h, p)) => (percent_decode(h), p),
            None => (percent_decode(first), ""),
        }
    };
    let host = if host.is_empty() {
        default_host()
    } else {
        host
    };
    (host, port.parse().unwrap_or(5432))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_non_ascii_and_reserved() {
        assert_eq!(percent_encode("a b@c:d/é"), "a%20b%40c%3Ad%2F%C3%A9");
        assert_eq!(percent_encode("scram_pass-1.~"), "scram_pass-1.~");
    }

    #[test]
    fn decode_inverts_encode() {
        let s = "p\u{E4}\u{A0}ss\u{AD}w\u{F6}rd\u{AA} %zz";
        assert_eq!(percent_decode(&percent_encode(s)), s);
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn builds_urls() {
        assert_eq!(
            tcp_url("u", Some("p:w"), "127.0.0.1", 5433, "db"),
            "postgresql://u:p%3Aw@127.0.0.1:5433/db"
        );
        assert_eq!(
            tcp_url("trust_user", None, "127.0.0.1", 1, "db"),
            "postgresql://trust_user@127.0.0.1:1/db"
        );
        assert_eq!(
            socket_url("u", None, "/tmp/s", 7, "db"),
            "postgresql://u@/db?host=%2Ftmp%2Fs&port=7"
        );
    }

    #[test]
    fn reads_host_and_port() {
        assert_eq!(
            host_port("postgres://a:b@db.example:6543/x?sslmode=disable"),
            ("db.example".into(), 6543)
        );
        assert_eq!(host_port("postgresql:///x"), ("localhost".into(), 5432));
        assert_eq!(host_port("postgresql://[::1]:7/x"), ("::1".into(), 7));
        assert_eq!(
            host_port("postgresql://%2Ftmp%2Fs:9/x"),
            ("/tmp/s".into(), 9)
        );
        assert_eq!(
            host_port("host=10.0.0.1 port=6000 user=x"),
            ("10.0.0.1".into(), 6000)
        );
        assert_eq!(host_port("postgresql://h1:1,h2:2/x"), ("h1".into(), 1));
    }
}
