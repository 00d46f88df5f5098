use super::params::{SUPPORTED_KEYS, UNSUPPORTED_KEYS};
use super::resolve::{ENV_KEYS, Probe, SystemProbe};
use super::*;
use super::{options, params};
use proptest::prelude::*;
use std::collections::HashMap;

fn parse(s: &str) -> Config {
    match Config::parse(s) {
        Ok(c) => c,
        Err(e) => panic!("{s:?} should parse, got: {e}"),
    }
}

fn parse_err(s: &str) -> String {
    match Config::parse(s) {
        Ok(c) => panic!("{s:?} should fail, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn tcp(s: &str) -> Host {
    Host::Tcp(s.into())
}

fn unix(s: &str) -> Host {
    Host::Unix(s.into())
}

/// A fake machine: which sockets exist, what /etc/passwd would say.
struct FakeProbe {
    sockets: Vec<&'static str>,
    os_user: Option<&'static str>,
}

impl Probe for FakeProbe {
    fn socket_exists(&self, path: &Path) -> bool {
        self.sockets.iter().any(|s| Path::new(s) == path)
    }
    fn os_user(&self) -> Option<String> {
        self.os_user.map(str::to_owned)
    }
    fn home_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
    fn sysconf_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
}

const NO_MACHINE: FakeProbe = FakeProbe {
    sockets: Vec::new(),
    os_user: None,
};

fn resolve(cfg: &Config, env: &[(&str, &str)], probe: &FakeProbe) -> Result<Config, String> {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |k: &str| map.get(k).cloned();
    cfg.resolve_inner(&env, probe).map_err(|e| e.to_string())
}

// ---- the DSNs the issue lists, each exactly ----

#[test]
fn url_user_at_localhost() {
    let c = parse("postgresql://user@localhost");
    assert_eq!(c.get_hosts(), &[tcp("localhost")]);
    assert!(c.get_ports().is_empty());
    assert_eq!(c.get_user(), Some("user"));
    assert_eq!(c.get_password(), None);
    assert_eq!(c.get_dbname(), None);
}

#[test]
fn url_encoded_socket_dir_password_and_timeout() {
    let c = parse("postgresql://user:password@%2Fvar%2Flib%2Fpostgresql/mydb?connect_timeout=10");
    assert_eq!(c.get_hosts(), &[unix("/var/lib/postgresql")]);
    assert_eq!(c.get_user(), Some("user"));
    assert_eq!(c.get_password(), Some(&b"password"[..]));
    assert_eq!(c.get_dbname(), Some("mydb"));
    assert_eq!(c.get_connect_timeout(), Some(Duration::from_secs(10)));
}

#[test]
fn url_multi_host_with_target_session_attrs() {
    let c = parse("postgresql://user@host1:1234,host2,host3:5678?target_session_attrs=read-write");
    assert_eq!(c.get_hosts(), &[tcp("host1"), tcp("host2"), tcp("host3")]);
    assert_eq!(c.get_ports(), &[1234, DEFAULT_PORT, 5678]);
    assert_eq!(c.get_user(), Some("user"));
    assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::ReadWrite);
    assert_eq!(
        c.targets(),
        vec![
            (tcp("host1"), 1234),
            (tcp("host2"), 5432),
            (tcp("host3"), 5678)
        ]
    );
}

#[test]
fn url_empty_host_with_query_host_and_user() {
    let c = parse("postgresql:///mydb?user=user&host=/var/lib/postgresql");
    assert_eq!(c.get_hosts(), &[unix("/var/lib/postgresql")]);
    assert_eq!(c.get_user(), Some("user"));
    assert_eq!(c.get_dbname(), Some("mydb"));
    assert!(c.get_ports().is_empty());
}

#[test]
fn key_value_with_quoted_escaped_password() {
    let c = parse(r"host=localhost port=5432 user=u password='a b\'c' dbname=d");
    assert_eq!(c.get_hosts(), &[tcp("localhost")]);
    assert_eq!(c.get_ports(), &[5432]);
    assert_eq!(c.get_user(), Some("u"));
    assert_eq!(c.get_password(), Some(&b"a b'c"[..]));
    assert_eq!(c.get_dbname(), Some("d"));
}

#[test]
fn url_postgres_scheme_full() {
    let c = parse("postgres://postgres:postgres@localhost:5432/postgres");
    assert_eq!(c.get_hosts(), &[tcp("localhost")]);
    assert_eq!(c.get_ports(), &[5432]);
    assert_eq!(c.get_user(), Some("postgres"));
    assert_eq!(c.get_password(), Some(&b"postgres"[..]));
    assert_eq!(c.get_dbname(), Some("postgres"));
}

// ---- URL details ----

#[test]
fn url_ipv6() {
    let c = parse("postgresql://[::1]:5432/db");
    assert_eq!(c.get_hosts(), &[tcp("::1")]);
    assert_eq!(c.get_ports(), &[5432]);
    let c = parse("postgresql://u@[::1],[2001:db8::2]:6000");
    assert_eq!(c.get_hosts(), &[tcp("::1"), tcp("2001:db8::2")]);
    assert_eq!(c.get_ports(), &[5432, 6000]);
    let c = parse("postgresql://[fe80::1%25eth0]");
    assert_eq!(c.get_hosts(), &[tcp("fe80::1%eth0")]);
    assert_eq!(
        parse_err("postgresql://[::1:5432/db"),
        "missing \"]\" after IPv6 address in URL"
    );
    assert!(parse_err("postgresql://[::1]x/db").contains("after IPv6 address"));
    let c = parse("host=::1 port=5433");
    assert_eq!(c.get_hosts(), &[tcp("::1")]);
}

#[test]
fn url_empty_hosts() {
    for s in [
        "postgresql://",
        "postgres://",
        "postgresql:///",
        "postgresql://user@",
        "postgresql://[]",
    ] {
        let c = parse(s);
        assert!(c.get_hosts().is_empty(), "{s}");
        assert!(c.get_ports().is_empty(), "{s}");
        assert_eq!(c.get_dbname(), None, "{s}");
    }
    let c = parse("postgresql:///db");
    assert!(c.get_hosts().is_empty());
    assert_eq!(c.get_dbname(), Some("db"));
    let c = parse("postgresql://:5433/db");
    assert!(c.get_hosts().is_empty());
    assert_eq!(c.get_ports(), &[5433]);
    // Two empty entries are two default-host placeholders (libpq).
    let c = parse("postgresql://,");
    assert_eq!(c.get_hosts(), &[tcp(""), tcp("")]);
    assert_eq!(c.get_ports(), &[5432, 5432]);
}

#[test]
fn url_percent_decoding_everywhere() {
    let c = parse(
        "postgresql://us%40er:p%40ss%2Fw%3Ard%FF@my%2Dhost:5432/my%20db\
         ?application_name=a%26b%3Dc&options=-c%20search_path%3Dx",
    );
    assert_eq!(c.get_user(), Some("us@er"));
    assert_eq!(c.get_password(), Some(&b"p@ss/w:rd\xff"[..]));
    assert_eq!(c.get_hosts(), &[tcp("my-host")]);
    assert_eq!(c.get_dbname(), Some("my db"));
    assert_eq!(c.get_application_name(), Some("a&b=c"));
    assert_eq!(c.get_options(), Some("-c search_path=x"));
    // '+' is not a space in libpq URLs.
    assert_eq!(parse("postgresql:///a+b").get_dbname(), Some("a+b"));
    // Percent-encoded key names too.
    assert_eq!(parse("postgresql://?%75ser=x").get_user(), Some("x"));
}

#[test]
fn url_bad_percent_encoding_names_the_part() {
    assert_eq!(
        parse_err("postgresql://u@h/d%zz"),
        "invalid percent-encoding in URL dbname"
    );
    assert_eq!(
        parse_err("postgresql://u@h%2/d"),
        "invalid percent-encoding in URL host"
    );
    assert_eq!(
        parse_err("postgresql://u@h/d?user=%"),
        "invalid percent-encoding in URL query parameter \"user\""
    );
    assert_eq!(
        parse_err("postgresql://u@h/%FF"),
        "URL dbname is not valid UTF-8"
    );
}

#[test]
fn url_password_with_unencoded_slash_and_at() {
    let c = parse("postgresql://u:pa/s@s@host/db");
    assert_eq!(c.get_password(), Some(&b"pa/s@s"[..]));
    assert_eq!(c.get_hosts(), &[tcp("host")]);
    assert_eq!(c.get_dbname(), Some("db"));
}

#[test]
fn url_query_overrides_and_errors() {
    let c = parse("postgresql://a@h1/db1?user=b&dbname=db2&port=7&&");
    assert_eq!(c.get_user(), Some("b"));
    assert_eq!(c.get_dbname(), Some("db2"));
    assert_eq!(c.get_ports(), &[7]);
    assert_eq!(
        parse_err("postgresql://h/db?user=x&oops"),
        "missing \"=\" in URL query parameter number 2"
    );
    assert_eq!(
        parse_err("postgresql://h/db?foo=1"),
        "invalid connection option \"foo\""
    );
}

#[test]
fn url_port_errors() {
    assert_eq!(
        parse_err("postgresql://u:p@h:abc/db"),
        "invalid port \"abc\" in URL"
    );
    assert_eq!(
        parse_err("postgresql://u@h:70000"),
        "invalid port \"70000\" in URL"
    );
    assert_eq!(parse_err("postgresql://u@h:0"), "invalid port \"0\" in URL");
    // Without credentials "a:b" may be "user:password": the value is not shown.
    let e = parse_err("postgresql://h:abc/db");
    assert!(e.starts_with("invalid port in URL"), "{e}");
    assert!(!e.contains("abc"), "{e}");
}

#[test]
fn url_ssl_true_is_sslmode_require() {
    assert_eq!(
        parse("postgresql://h?ssl=true").get_ssl_mode(),
        SslMode::Require
    );
    assert!(parse_err("postgresql://h?ssl=1").contains("invalid ssl value"));
    assert_eq!(parse_err("ssl=true"), "invalid connection option \"ssl\"");
}

#[test]
fn foreign_scheme_is_named() {
    assert_eq!(
        parse_err("mysql://u:secret@h/db"),
        "unsupported URL scheme \"mysql\": expected postgresql:// or postgres://"
    );
}

// ---- key=value details ----

#[test]
fn key_value_spaces_around_equals() {
    let c = parse("  host =  h1\tport= 6000\n user  =u   dbname='my db'  ");
    assert_eq!(c.get_hosts(), &[tcp("h1")]);
    assert_eq!(c.get_ports(), &[6000]);
    assert_eq!(c.get_user(), Some("u"));
    assert_eq!(c.get_dbname(), Some("my db"));
}

#[test]
fn key_value_backslash_escapes() {
    let c = parse(r"password=a\ b\\c\'d dbname='x\\y' user=\u");
    assert_eq!(c.get_password(), Some(&br"a b\c'd"[..]));
    assert_eq!(c.get_dbname(), Some(r"x\y"));
    assert_eq!(c.get_user(), Some("u"));
    // A trailing backslash is dropped, like libpq.
    assert_eq!(parse(r"user=u\").get_user(), Some("u"));
    // Non-ASCII survives escaping.
    assert_eq!(parse(r"user=\é").get_user(), Some("é"));
    // Empty quoted value = unset.
    assert_eq!(parse("user=''").get_user(), None);
}

#[test]
fn key_value_errors() {
    assert_eq!(
        parse_err("password='abc"),
        "unterminated quoted value for key \"password\""
    );
    assert_eq!(
        parse_err("host=h dbname"),
        "missing \"=\" after \"dbname\" in connection string"
    );
    assert_eq!(parse_err("foo=bar"), "invalid connection option \"foo\"");
    assert_eq!(parse_err("=bar"), "invalid connection option \"\"");
    assert_eq!(
        parse_err("hostaddr=127.0.0.1"),
        "connection option \"hostaddr\" is not supported"
    );
    assert_eq!(
        parse_err("port=abc"),
        "invalid port \"abc\" in connection string"
    );
    assert_eq!(
        parse_err("port=0"),
        "invalid port \"0\" in connection string"
    );
}

#[test]
fn empty_input_is_all_unset() {
    assert_eq!(parse(""), Config::new());
    assert_eq!(parse("   "), Config::new());
}

#[test]
fn later_values_replace_earlier_ones() {
    let c = parse("host=a,b host=c user=x user=y");
    assert_eq!(c.get_hosts(), &[tcp("c")]);
    assert_eq!(c.get_user(), Some("y"));
}

#[test]
fn multi_host_port_rules() {
    let c = parse("host=a,b,c port=1,,3");
    assert_eq!(c.get_hosts(), &[tcp("a"), tcp("b"), tcp("c")]);
    assert_eq!(c.get_ports(), &[1, 5432, 3]);
    let c = parse("host=a,/tmp,b port=7");
    assert_eq!(
        c.targets(),
        vec![(tcp("a"), 7), (unix("/tmp"), 7), (tcp("b"), 7)]
    );
    assert_eq!(
        parse_err("host=a,b port=1,2,3"),
        "could not match 3 port numbers to 2 hosts"
    );
    // Host list entries that are empty are default-host placeholders.
    assert_eq!(
        parse("host=a,,b").get_hosts(),
        &[tcp("a"), tcp(""), tcp("b")]
    );
    // Port list alone is fine until the hosts are known.
    assert_eq!(parse("port=1,2").get_ports(), &[1, 2]);
}

#[test]
fn unix_socket_hosts() {
    assert_eq!(parse("host=/tmp").get_hosts(), &[unix("/tmp")]);
    assert_eq!(
        parse("host=/var/run/postgresql,db.example").get_hosts(),
        &[unix("/var/run/postgresql"), tcp("db.example")]
    );
}

// ---- parameter semantics ----

#[test]
fn connect_timeout_follows_libpq() {
    let t = |v: &str| parse(&format!("connect_timeout={v}")).get_connect_timeout();
    assert_eq!(t("10"), Some(Duration::from_secs(10)));
    assert_eq!(t(" 3 "), Some(Duration::from_secs(3)));
    assert_eq!(t("2"), Some(Duration::from_secs(2)));
    assert_eq!(t("1"), Some(Duration::from_secs(2)));
    assert_eq!(t("0"), None);
    assert_eq!(t("-5"), None);
    assert_eq!(
        parse_err("connect_timeout=1s"),
        "invalid integer value \"1s\" for connection option \"connect_timeout\""
    );
    assert!(parse_err("connect_timeout=99999999999").contains("invalid integer value"));
}

#[test]
fn target_session_attrs_values() {
    for (v, want) in [
        ("any", TargetSessionAttrs::Any),
        ("read-write", TargetSessionAttrs::ReadWrite),
        ("read-only", TargetSessionAttrs::ReadOnly),
        ("primary", TargetSessionAttrs::Primary),
        ("standby", TargetSessionAttrs::Standby),
        ("prefer-standby", TargetSessionAttrs::PreferStandby),
    ] {
        let c = parse(&format!("target_session_attrs={v}"));
        assert_eq!(c.get_target_session_attrs(), want);
        assert_eq!(want.as_str(), v);
    }
    assert_eq!(
        Config::new().get_target_session_attrs(),
        TargetSessionAttrs::Any
    );
    assert_eq!(
        parse_err("target_session_attrs=master"),
        "invalid target_session_attrs value: \"master\""
    );
}

#[test]
fn sslmode_values() {
    for (v, want) in [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        assert_eq!(parse(&format!("sslmode={v}")).get_ssl_mode(), want);
        assert_eq!(want.to_string(), v);
        assert_eq!(v.parse::<SslMode>().map(SslMode::as_str), Ok(v));
    }
    assert_eq!(parse_err("sslmode=on"), "invalid sslmode value: \"on\"");
    assert_eq!(Config::new().get_ssl_mode(), SslMode::Prefer);
    let mut c = Config::new();
    c.ssl_mode(SslMode::VerifyFull);
    assert_eq!(c.validate().map_err(|e| e.to_string()), Ok(()));
}

#[test]
fn tls_keys() {
    let c = parse(
        "sslrootcert=/ca.pem sslcert=/c.pem sslkey=/c.key sslsni=0 \
         ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.3",
    );
    assert_eq!(
        c.get_ssl_root_cert(),
        Some(crate::config::RootCert::File("/ca.pem".into()))
    );
    assert_eq!(c.get_ssl_cert(), Some("/c.pem"));
    assert_eq!(c.get_ssl_key(), Some("/c.key"));
    assert!(!c.get_ssl_sni());
    assert!(Config::new().get_ssl_sni());
    assert_eq!(
        c.get_ssl_min_protocol_version(),
        crate::config::TlsVersion::V1_3
    );
    assert_eq!(
        Config::new().get_ssl_min_protocol_version(),
        crate::config::TlsVersion::V1_2
    );
    assert_eq!(parse_err("sslsni=yes"), "invalid sslsni value: \"yes\"");
    use crate::config::SslNegotiation;
    assert_eq!(
        Config::new().get_ssl_negotiation(),
        SslNegotiation::Postgres
    );
    assert_eq!(
        parse("sslmode=require sslnegotiation=direct").get_ssl_negotiation(),
        SslNegotiation::Direct
    );
    assert_eq!(
        parse("sslnegotiation=postgres").get_ssl_negotiation(),
        SslNegotiation::Postgres
    );
    assert_eq!(
        parse_err("sslnegotiation=tls"),
        "invalid sslnegotiation value: \"tls\""
    );
    assert!(
        parse_err("sslmode=allow sslnegotiation=direct")
            .contains("weak sslmode \"allow\" may not be used with sslnegotiation=direct")
    );
    assert_eq!(
        parse_err("ssl_min_protocol_version=TLSv9"),
        "invalid ssl_min_protocol_version value: \"TLSv9\""
    );
    assert!(
        parse_err("ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2")
            .contains("ssl_min_protocol_version is above ssl_max_protocol_version")
    );
    // libpq: the system store only with a host name check, which it then defaults to.
    assert_eq!(
        parse_err("sslrootcert=system sslmode=require"),
        "weak sslmode \"require\" may not be used with sslrootcert=system (use \"verify-full\")"
    );
    assert_eq!(
        resolve(&parse("sslrootcert=system"), &[("USER", "u")], &NO_MACHINE)
            .map(|c| c.get_ssl_mode()),
        Ok(SslMode::VerifyFull)
    );
    // Paths only: nothing is read while parsing, and Debug shows no key material.
    assert!(format!("{c:?}").contains("/c.key"));
}

#[test]
fn keepalive_and_tcp_parameters() {
    let c = parse(
        "keepalives=0 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 \
         tcp_user_timeout=1500 require_auth=scram-sha-256,md5",
    );
    assert!(!c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), Some(Duration::from_secs(30)));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(5)));
    assert_eq!(c.get_keepalives_count(), Some(3));
    assert_eq!(c.get_tcp_user_timeout(), Some(Duration::from_millis(1500)));
    assert_eq!(c.get_require_auth(), Some("scram-sha-256,md5"));
    assert!(parse("keepalives=1").get_keepalives());
    assert!(Config::new().get_keepalives());
    // Negative values are clamped to 0, as libpq does for the keepalive knobs.
    assert_eq!(
        parse("keepalives_idle=-1").get_keepalives_idle(),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_err("keepalives=yes"),
        "invalid integer value \"yes\" for connection option \"keepalives\""
    );
}

#[test]
fn other_libpq_keys() {
    parse("gssencmode=disable channel_binding=prefer load_balance_hosts=disable");
    assert!(parse_err("gssencmode=require").contains("not supported"));
    assert_eq!(
        parse("channel_binding=require").get_channel_binding(),
        crate::config::ChannelBinding::Require
    );
    assert_eq!(
        Config::new().get_channel_binding(),
        crate::config::ChannelBinding::Prefer
    );
    assert_eq!(
        parse_err("channel_binding=always"),
        "invalid channel_binding value: \"always\""
    );
    assert!(parse("load_balance_hosts=random").load_balances_randomly());
    assert!(!parse("load_balance_hosts=disable").load_balances_randomly());
    assert_eq!(
        parse_err("load_balance_hosts=sometimes"),
        "invalid load_balance_hosts value: \"sometimes\""
    );
    assert_eq!(parse("sslcrl=/x.crl").get_ssl_crl(), Some("/x.crl"));
    assert_eq!(parse("sslcrldir=/crls").get_ssl_crl_dir(), Some("/crls"));
    assert_eq!(
        parse_err("sslcompression=1"),
        "connection option \"sslcompression\" is not supported"
    );
    let c = parse("fallback_application_name=tool");
    assert_eq!(c.get_fallback_application_name(), Some("tool"));
    assert_eq!(c.get_application_name(), None);
}

#[test]
fn client_encoding_must_stay_utf8() {
    for ok in ["UTF8", "utf8", "utf-8", "Unicode"] {
        parse(&format!("client_encoding={ok}"));
    }
    assert_eq!(
        parse_err("client_encoding=LATIN1"),
        "client_encoding \"LATIN1\" is not supported: pgwire-lite always uses UTF8"
    );
    let rejected = [
        "-c client_encoding=LATIN1",
        "-cclient_encoding=LATIN1",
        "--client_encoding=LATIN1",
        "--client-encoding=LATIN1",
        "-c CLIENT_ENCODING=SQL_ASCII",
        "-c search_path=x -c client_encoding=UTF8",
        "-ec client_encoding=LATIN1",
        "-c\tclient_encoding=LATIN1",
    ];
    for o in rejected {
        let mut c = Config::new();
        c.options(o);
        assert_eq!(
            c.validate().map_err(|e| e.to_string()),
            Err("options must not set client_encoding: pgwire-lite always uses UTF8".into()),
            "{o}"
        );
    }
    assert!(parse_err("options='-c client_encoding=LATIN1'").contains("client_encoding"));
    assert!(parse_err("postgresql://h?options=--client_encoding%3Dx").contains("client_encoding"));
    for ok in [
        "-c search_path=client_encoding",
        "-c application_name=client_encoding=x",
        "-c statement_timeout=5s -c geqo=off",
        r"-c search_path=a\ b",
        "-p client_encoding=x",
    ] {
        let mut c = Config::new();
        c.options(ok);
        assert_eq!(c.validate(), Ok(()), "{ok}");
    }
}

#[test]
fn nul_bytes_are_rejected() {
    assert_eq!(parse_err("user=a\0b"), "user contains a NUL byte");
    assert_eq!(
        parse_err("postgresql://u@h/d%00b"),
        "dbname contains a NUL byte"
    );
    assert_eq!(
        parse_err("postgresql://h?application_name=a%00"),
        "application_name contains a NUL byte"
    );
    assert_eq!(
        parse_err("postgresql://u:sec%00ret@h"),
        "password contains a NUL byte"
    );
    assert_eq!(
        parse_err("options='-c x=\0'"),
        "options contains a NUL byte"
    );
    assert_eq!(parse_err("host=a\0"), "host contains a NUL byte");
    let mut c = Config::new();
    c.require_auth("md5\0");
    assert!(c.validate().is_err());
}

// ---- secrets ----

#[test]
fn debug_redacts_password() {
    let c = parse("postgresql://u:secret123@h/db");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("secret123"), "{dbg}");
    assert!(dbg.contains("password: Some(<redacted>)"), "{dbg}");
    assert!(format!("{:?}", Config::new()).contains("password: None"));
    let mut b = Config::new();
    b.password("secret123");
    assert!(!format!("{b:#?}").contains("secret123"));
}

#[test]
fn errors_never_contain_the_password() {
    let bad = [
        "postgresql://u:secret123@h:abc/db",
        "postgresql://u:secret123@h/db?foo=1",
        "postgresql://u:secret123@[::1/db",
        "postgresql://u:secret123/db",
        "postgresql://u:secret123",
        "postgresql://u:sec?ret123@h:1",
        "postgresql://u:secret%ZZ123@h",
        "postgresql://u:secret123@h/db?password=x&ret123",
        "postgresql://h/db?password=secret%2",
        "postgresql://u:secret123%00@h",
        "password=secret123 foo",
        "password=sec ret123=x",
        "password=sec ret123",
        "password='secret123",
        "password=secret123 sslmode=required",
        "mysql://u:secret123@h",
        "password=secret123\0",
    ];
    for dsn in bad {
        let e = parse_err(dsn);
        for fragment in ["secret", "ret123", "sec"] {
            assert!(!e.contains(fragment), "{dsn:?} -> {e:?}");
        }
    }
}

// ---- builder ----

#[test]
fn builder_setters_and_getters() {
    let mut c = Config::new();
    c.host("db1")
        .host("/run/pg")
        .host_path("relative/sock")
        .port(5433)
        .user("app")
        .password(b"pw\xff")
        .dbname("orders")
        .options("-c search_path=app")
        .application_name("billing")
        .fallback_application_name("tool")
        .connect_timeout(Duration::from_millis(500))
        .target_session_attrs(TargetSessionAttrs::PreferStandby)
        .ssl_mode(SslMode::Disable)
        .keepalives(false)
        .keepalives_idle(Duration::from_secs(60))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_count(4)
        .tcp_user_timeout(Duration::from_secs(9))
        .require_auth("!password");
    assert_eq!(
        c.get_hosts(),
        &[tcp("db1"), unix("/run/pg"), unix("relative/sock")]
    );
    assert_eq!(c.get_ports(), &[5433]);
    assert_eq!(c.get_user(), Some("app"));
    assert_eq!(c.get_password(), Some(&b"pw\xff"[..]));
    assert_eq!(c.get_dbname(), Some("orders"));
    assert_eq!(c.get_options(), Some("-c search_path=app"));
    assert_eq!(c.get_application_name(), Some("billing"));
    assert_eq!(c.get_fallback_application_name(), Some("tool"));
    assert_eq!(c.get_connect_timeout(), Some(Duration::from_millis(500)));
    assert_eq!(
        c.get_target_session_attrs(),
        TargetSessionAttrs::PreferStandby
    );
    assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    assert!(!c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), Some(Duration::from_secs(60)));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(10)));
    assert_eq!(c.get_keepalives_count(), Some(4));
    assert_eq!(c.get_tcp_user_timeout(), Some(Duration::from_secs(9)));
    assert_eq!(c.get_require_auth(), Some("!password"));
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(
        c.targets(),
        vec![
            (tcp("db1"), 5433),
            (unix("/run/pg"), 5433),
            (unix("relative/sock"), 5433)
        ]
    );
    c.connect_timeout(Duration::ZERO);
    assert_eq!(c.get_connect_timeout(), None);
    c.port(1);
    assert_eq!(
        c.validate().map_err(|e| e.to_string()),
        Err("could not match 2 port numbers to 3 hosts".into())
    );
    let mut z = Config::new();
    z.port(0);
    assert_eq!(
        z.validate().map_err(|e| e.to_string()),
        Err("invalid port 0".into())
    );
}

#[test]
fn from_str_matches_parse() {
    let s = "postgresql://u:p@h:1/d?application_name=x";
    assert_eq!(s.parse::<Config>(), Config::parse(s));
    assert_eq!(Config::default(), Config::new());
    assert_eq!(tcp("h").to_string(), "h");
    assert_eq!(unix("/tmp").to_string(), "/tmp");
}

// ---- environment and defaults ----

#[test]
fn resolve_fills_everything_from_env() {
    let env = [
        ("PGHOST", "e1,/sock,e3"),
        ("PGPORT", "1,2,3"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", "envpw"),
        ("PGDATABASE", "envdb"),
        ("PGAPPNAME", "envapp"),
        ("PGCONNECT_TIMEOUT", "1"),
        ("PGOPTIONS", "-c geqo=off"),
        ("PGSSLMODE", "disable"),
        ("PGTARGETSESSIONATTRS", "read-only"),
        ("PGREQUIREAUTH", "scram-sha-256"),
    ];
    let c = resolve(&Config::new(), &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_hosts(), &[tcp("e1"), unix("/sock"), tcp("e3")]);
    assert_eq!(c.get_ports(), &[1, 2, 3]);
    assert_eq!(c.get_user(), Some("envuser"));
    assert_eq!(c.get_password(), Some(&b"envpw"[..]));
    assert_eq!(c.get_dbname(), Some("envdb"));
    assert_eq!(c.get_application_name(), Some("envapp"));
    assert_eq!(c.get_connect_timeout(), Some(Duration::from_secs(2)));
    assert_eq!(c.get_options(), Some("-c geqo=off"));
    assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::ReadOnly);
    assert_eq!(c.get_require_auth(), Some("scram-sha-256"));
}

#[test]
fn resolve_dsn_wins_over_env() {
    let cfg = parse(
        "host=h port=9 user=u password=p dbname=d application_name=a connect_timeout=0 \
         options=-cx=1 sslmode=allow target_session_attrs=primary",
    );
    let env = [
        ("PGHOST", "eh"),
        ("PGPORT", "1"),
        ("PGUSER", "eu"),
        ("PGPASSWORD", "ep"),
        ("PGDATABASE", "ed"),
        ("PGAPPNAME", "ea"),
        ("PGCONNECT_TIMEOUT", "30"),
        ("PGOPTIONS", "-cy=2"),
        ("PGSSLMODE", "disable"),
        ("PGTARGETSESSIONATTRS", "standby"),
    ];
    let c = resolve(&cfg, &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.targets(), vec![(tcp("h"), 9)]);
    assert_eq!(c.get_user(), Some("u"));
    assert_eq!(c.get_password(), Some(&b"p"[..]));
    assert_eq!(c.get_dbname(), Some("d"));
    assert_eq!(c.get_application_name(), Some("a"));
    // connect_timeout=0 is an explicit "no timeout": PGCONNECT_TIMEOUT must not win.
    assert_eq!(c.get_connect_timeout(), None);
    assert_eq!(c.get_options(), Some("-cx=1"));
    assert_eq!(c.get_ssl_mode(), SslMode::Allow);
    assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::Primary);
}

#[test]
fn resolve_defaults_without_env() {
    let machine = FakeProbe {
        sockets: vec![],
        os_user: Some("osuser"),
    };
    let c = resolve(&Config::new(), &[], &machine).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.targets(), vec![(tcp("localhost"), 5432)]);
    assert_eq!(c.get_user(), Some("osuser"));
    assert_eq!(c.get_dbname(), Some("osuser"));
    assert_eq!(c.get_password(), None);
    assert_eq!(c.get_application_name(), None);
    assert_eq!(c.get_connect_timeout(), None);
    assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
    assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::Any);
    // Resolving again changes nothing.
    assert_eq!(
        resolve(&c, &[("PGHOST", "x"), ("PGCONNECT_TIMEOUT", "9")], &machine),
        Ok(c)
    );
}

#[test]
fn resolve_user_from_user_then_logname_then_passwd() {
    let machine = FakeProbe {
        sockets: vec![],
        os_user: Some("fromuid"),
    };
    let user = |env: &[(&str, &str)]| {
        resolve(&Config::new(), env, &machine).map(|c| c.get_user().map(str::to_owned))
    };
    assert_eq!(
        user(&[("USER", "a"), ("LOGNAME", "b")]),
        Ok(Some("a".into()))
    );
    assert_eq!(
        user(&[("USER", ""), ("LOGNAME", "b")]),
        Ok(Some("b".into()))
    );
    assert_eq!(user(&[]), Ok(Some("fromuid".into())));
    assert_eq!(
        resolve(&Config::new(), &[], &NO_MACHINE),
        Err(
            "could not determine the user name: set user in the connection string or PGUSER".into()
        )
    );
}

#[cfg(unix)]
#[test]
fn resolve_default_host_prefers_existing_socket() {
    let both = FakeProbe {
        sockets: vec!["/var/run/postgresql/.s.PGSQL.5433", "/tmp/.s.PGSQL.5433"],
        os_user: Some("u"),
    };
    let tmp_only = FakeProbe {
        sockets: vec!["/tmp/.s.PGSQL.5432"],
        os_user: Some("u"),
    };
    let mut cfg = Config::new();
    cfg.port(5433);
    let c = resolve(&cfg, &[], &both).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.targets(), vec![(unix("/var/run/postgresql"), 5433)]);
    let c = resolve(&Config::new(), &[], &tmp_only).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.targets(), vec![(unix("/tmp"), 5432)]);
    // The socket of another port does not count.
    let c = resolve(&cfg, &[], &tmp_only).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.targets(), vec![(tcp("localhost"), 5433)]);
    // Placeholders in a host list get the default for their own port.
    let c = resolve(&parse("host=a,,b port=1,5432,3"), &[], &tmp_only)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.targets(),
        vec![(tcp("a"), 1), (unix("/tmp"), 5432), (tcp("b"), 3)]
    );
}

#[test]
fn resolve_application_name_precedence() {
    let cfg = parse("fallback_application_name=fb");
    let c = resolve(&cfg, &[("USER", "u")], &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_application_name(), Some("fb"));
    let c = resolve(&cfg, &[("USER", "u"), ("PGAPPNAME", "env")], &NO_MACHINE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_application_name(), Some("env"));
}

#[test]
fn resolve_reports_bad_env_by_name() {
    let base = [("USER", "u")];
    let with = |k: &'static str, v: &'static str| {
        let mut env = base.to_vec();
        env.push((k, v));
        resolve(&Config::new(), &env, &NO_MACHINE)
    };
    assert_eq!(
        with("PGPORT", "x"),
        Err("invalid port \"x\" in PGPORT".into())
    );
    assert_eq!(
        with("PGCONNECT_TIMEOUT", "soon"),
        Err("invalid integer value \"soon\" in PGCONNECT_TIMEOUT".into())
    );
    assert_eq!(
        with("PGSSLMODE", "bogus"),
        Err("invalid sslmode value: \"bogus\" (from PGSSLMODE)".into())
    );
    assert_eq!(
        with("PGSSLMODE", "require").map(|c| c.get_ssl_mode()),
        Ok(SslMode::Require)
    );
    assert_eq!(
        with("PGTARGETSESSIONATTRS", "x"),
        Err("invalid target_session_attrs value: \"x\" (from PGTARGETSESSIONATTRS)".into())
    );
    assert_eq!(
        with("PGOPTIONS", "-c client_encoding=latin1"),
        Err(
            "options must not set client_encoding: pgwire-lite always uses UTF8 (from PGOPTIONS)"
                .into()
        )
    );
    // Hosts from the environment, ports from the DSN: counts are checked once both known.
    assert_eq!(
        resolve(
            &parse("port=1,2"),
            &[("USER", "u"), ("PGHOST", "a,b,c")],
            &NO_MACHINE
        ),
        Err("could not match 2 port numbers to 3 hosts".into())
    );
}

#[test]
fn resolve_with_uses_the_given_env() {
    let env = |k: &str| match k {
        "PGUSER" => Some("fake".to_owned()),
        "PGHOST" => Some("envhost".to_owned()),
        _ => None,
    };
    let c = Config::new()
        .resolve_with(&env)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_user(), Some("fake"));
    assert_eq!(c.get_dbname(), Some("fake"));
    assert_eq!(c.targets(), vec![(tcp("envhost"), 5432)]);
}

#[test]
fn system_probe_finds_some_user() {
    // Whatever this machine is, the running uid has a passwd entry in our CI images.
    let user = SystemProbe.os_user();
    assert!(user.as_deref().is_some_and(|u| !u.is_empty()), "{user:?}");
}

#[cfg(unix)]
#[test]
fn system_probe_user_is_the_effective_user() {
    // `id -un` asks the same NSS lookup (getpwuid of the effective uid) that libpq does.
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("running id -un: {e}"));
    assert!(out.status.success(), "id -un: {out:?}");
    let expected = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(SystemProbe.os_user(), Some(expected));
}

#[cfg(not(unix))]
#[test]
fn resolve_default_host_is_localhost_off_unix() {
    // libpq probes no socket directory off unix, even where one would exist.
    let machine = FakeProbe {
        sockets: vec!["/tmp/.s.PGSQL.5432"],
        os_user: Some("u"),
    };
    let c = resolve(&Config::new(), &[], &machine).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.targets(), vec![(tcp("localhost"), 5432)]);
}

// ---- every libpq environment variable, exactly as its DSN key ----

/// Values tried for each variable: relaxing ones, demanding ones, malformed ones.
const ENV_CASES: &[(&str, &[&str])] = &[
    ("PGHOST", &["db1,/sock", "/var/run/postgresql"]),
    // `direct` alone meets the default sslmode, prefer, which it refuses: see
    // `direct_negotiation_from_the_environment`.
    ("PGSSLNEGOTIATION", &["postgres", "tls"]),
    ("PGHOSTADDR", &["127.0.0.1"]),
    ("PGPORT", &["6000", "x", "0"]),
    ("PGDATABASE", &["envdb"]),
    ("PGUSER", &["envuser"]),
    ("PGPASSWORD", &["env pw"]),
    ("PGPASSFILE", &["/home/u/.pgpass"]),
    ("PGREQUIREAUTH", &["scram-sha-256", "!password", "bogus"]),
    (
        "PGCHANNELBINDING",
        &["disable", "prefer", "require", "bogus"],
    ),
    ("PGSERVICE", &["svc"]),
    ("PGSERVICEFILE", &["/etc/pg_service.conf"]),
    ("PGOPTIONS", &["-c geqo=off", "-c client_encoding=latin1"]),
    ("PGAPPNAME", &["envapp"]),
    (
        "PGSSLMODE",
        &[
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
            "bogus",
        ],
    ),
    ("PGSSLCOMPRESSION", &["0", "1"]),
    ("PGSSLCERT", &["/c.crt"]),
    ("PGSSLKEY", &["/c.key"]),
    ("PGSSLCERTMODE", &["disable", "require"]),
    ("PGSSLROOTCERT", &["system"]),
    ("PGSSLCRL", &["/c.crl"]),
    ("PGSSLCRLDIR", &["/crl"]),
    ("PGSSLSNI", &["0", "1"]),
    ("PGREQUIREPEER", &["postgres"]),
    ("PGSSLMINPROTOCOLVERSION", &["TLSv1.2"]),
    ("PGSSLMAXPROTOCOLVERSION", &["TLSv1.3"]),
    ("PGMINPROTOCOLVERSION", &["3.0"]),
    ("PGMAXPROTOCOLVERSION", &["3.0"]),
    ("PGGSSENCMODE", &["disable", "prefer", "require", "bogus"]),
    ("PGKRBSRVNAME", &["postgres"]),
    ("PGGSSLIB", &["gssapi"]),
    ("PGGSSDELEGATION", &["0", "1"]),
    ("PGCONNECT_TIMEOUT", &["10", "1", "0", "soon"]),
    ("PGCLIENTENCODING", &["UTF8", "LATIN1"]),
    ("PGTARGETSESSIONATTRS", &["read-write", "x"]),
    ("PGLOADBALANCEHOSTS", &["disable", "random", "x"]),
];

/// `key='value'`, quoted and escaped for the key=value parser.
fn dsn(key: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("{key}='{escaped}'")
}

fn env_key(var: &str) -> &'static str {
    match ENV_KEYS.iter().find(|(v, _)| *v == var) {
        Some((_, key)) => key,
        None => panic!("{var} is not in ENV_KEYS"),
    }
}

#[test]
fn env_keys_cover_libpq_and_map_to_known_keys() {
    let mut vars: Vec<&str> = ENV_KEYS.iter().map(|(v, _)| *v).collect();
    vars.sort_unstable();
    vars.dedup();
    assert_eq!(vars.len(), ENV_KEYS.len(), "a variable is listed twice");
    for (var, key) in ENV_KEYS {
        assert!(var.starts_with("PG"), "{var}");
        assert!(
            SUPPORTED_KEYS.contains(key) || UNSUPPORTED_KEYS.contains(key),
            "{var} maps to {key}, which the DSN parsers do not know"
        );
    }
    // The list libpq's documentation gives (connection keys only; the session settings and
    // PGREQUIRESSL are handled on their own).
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGCHANNELBINDING",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGAPPNAME",
        "PGSSLMODE",
        "PGSSLCOMPRESSION",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGSSLROOTCERT",
        "PGSSLCRL",
        "PGSSLCRLDIR",
        "PGSSLSNI",
        "PGREQUIREPEER",
        "PGSSLMINPROTOCOLVERSION",
        "PGSSLMAXPROTOCOLVERSION",
        "PGGSSENCMODE",
        "PGKRBSRVNAME",
        "PGGSSLIB",
        "PGGSSDELEGATION",
        "PGCONNECT_TIMEOUT",
        "PGCLIENTENCODING",
        "PGTARGETSESSIONATTRS",
        "PGLOADBALANCEHOSTS",
        "PGREQUIREAUTH",
        "PGSSLNEGOTIATION",
    ] {
        env_key(var);
    }
    // Every variable has cases below.
    for (var, _) in ENV_KEYS {
        assert!(
            ENV_CASES.iter().any(|(v, _)| v == var),
            "{var} has no test case"
        );
    }
}

#[test]
fn direct_negotiation_from_the_environment() {
    let c = resolve(
        &Config::new(),
        &[
            ("USER", "u"),
            ("PGSSLNEGOTIATION", "direct"),
            ("PGSSLMODE", "require"),
        ],
        &NO_MACHINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.get_ssl_negotiation(),
        crate::config::SslNegotiation::Direct
    );
    let e = resolve(
        &Config::new(),
        &[("USER", "u"), ("PGSSLNEGOTIATION", "direct")],
        &NO_MACHINE,
    )
    .unwrap_err();
    assert!(e.contains("weak sslmode \"prefer\""), "{e}");
}

/// The heart of it: for every variable and value, the environment gives what the DSN key
/// gives. Accepted: the same resolved config. Refused: the same message, naming the variable.
#[test]
fn every_env_variable_behaves_as_its_dsn_key() {
    let base = [("USER", "u")];
    for (var, values) in ENV_CASES {
        let key = env_key(var);
        for value in *values {
            let from_env = resolve(&Config::new(), &[base[0], (var, value)], &NO_MACHINE);
            match Config::parse(&dsn(key, value)) {
                Ok(cfg) => {
                    let from_dsn = resolve(&cfg, &base, &NO_MACHINE);
                    assert_eq!(from_env, from_dsn, "{var}={value:?} vs {key}={value:?}");
                    // A service name needs a file defining it (see the service tests): here
                    // both ways fail alike, naming the service.
                    if *var != "PGSERVICE" {
                        assert!(from_env.is_ok(), "{var}={value:?}: {from_env:?}");
                    }
                }
                Err(e) => {
                    let dsn_msg = e.to_string();
                    let expected = if dsn_msg.ends_with(" in connection string") {
                        dsn_msg.replace(" in connection string", &format!(" in {var}"))
                    } else if dsn_msg.ends_with(&format!("for connection option \"{key}\"")) {
                        dsn_msg.replace(
                            &format!("for connection option \"{key}\""),
                            &format!("in {var}"),
                        )
                    } else {
                        format!("{dsn_msg} (from {var})")
                    };
                    assert_eq!(from_env, Err(expected), "{var}={value:?}");
                }
            }
        }
    }
}

#[test]
fn env_refusals_the_finding_names() {
    let with = |var: &str, value: &str| {
        resolve(&Config::new(), &[("USER", "u"), (var, value)], &NO_MACHINE)
    };
    assert_eq!(
        with("PGCHANNELBINDING", "always").map(|c| c.get_channel_binding()),
        Err("invalid channel_binding value: \"always\" (from PGCHANNELBINDING)".into())
    );
    assert_eq!(
        with("PGGSSENCMODE", "require"),
        Err("gssencmode=require: GSSAPI encryption is not supported (from PGGSSENCMODE)".into())
    );
    assert_eq!(
        with("PGSSLROOTCERT", "system").map(|c| c.get_ssl_mode()),
        Ok(SslMode::VerifyFull)
    );
    assert_eq!(
        with("PGSSLCRL", "/root.crl").map(|c| c.get_ssl_crl().map(str::to_owned)),
        Ok(Some("/root.crl".into()))
    );
    assert_eq!(
        with("PGLOADBALANCEHOSTS", "sometimes"),
        Err("invalid load_balance_hosts value: \"sometimes\" (from PGLOADBALANCEHOSTS)".into())
    );
    assert_eq!(
        with("PGCLIENTENCODING", "LATIN1"),
        Err(
            "client_encoding \"LATIN1\" is not supported: pgwire-lite always uses UTF8 \
             (from PGCLIENTENCODING)"
                .into()
        )
    );
    // Relaxing values are accepted, as their DSN keys are.
    for (var, value) in [
        ("PGGSSENCMODE", "disable"),
        ("PGGSSENCMODE", "prefer"),
        ("PGCHANNELBINDING", "disable"),
        ("PGCHANNELBINDING", "prefer"),
        ("PGSSLMODE", "disable"),
        ("PGSSLMODE", "allow"),
        ("PGSSLMODE", "prefer"),
        ("PGLOADBALANCEHOSTS", "disable"),
        ("PGCLIENTENCODING", "utf-8"),
    ] {
        assert!(with(var, value).is_ok(), "{var}={value}");
    }
}

#[test]
fn env_never_overrides_a_key_the_dsn_gave() {
    for (given, var, demanding) in [
        ("channel_binding=disable", "PGCHANNELBINDING", "require"),
        ("gssencmode=prefer", "PGGSSENCMODE", "require"),
        ("sslmode=disable", "PGSSLMODE", "require"),
        ("sslmode=allow", "PGREQUIRESSL", "1"),
        (
            "load_balance_hosts=disable",
            "PGLOADBALANCEHOSTS",
            "sometimes",
        ),
        ("client_encoding=UTF8", "PGCLIENTENCODING", "LATIN1"),
        (
            "options=-cgeqo=off",
            "PGOPTIONS",
            "-c client_encoding=latin1",
        ),
        ("require_auth=md5", "PGREQUIREAUTH", "bogus"),
        ("port=7", "PGPORT", "x"),
        ("connect_timeout=3", "PGCONNECT_TIMEOUT", "soon"),
        ("target_session_attrs=any", "PGTARGETSESSIONATTRS", "x"),
    ] {
        let c = resolve(
            &parse(given),
            &[("USER", "u"), (var, demanding)],
            &NO_MACHINE,
        );
        assert!(c.is_ok(), "{given} + {var}={demanding}: {c:?}");
    }
    // Every supported key an environment variable stands for knows when it was given.
    for (var, values) in ENV_CASES {
        let key = env_key(var);
        if !SUPPORTED_KEYS.contains(&key) {
            continue;
        }
        let mut c = Config::new();
        if c.set_param(key, values[0].as_bytes(), params::Origin::KeyValue)
            .is_ok()
        {
            assert!(c.is_given(key), "{key}={}", values[0]);
        }
    }
}

#[test]
fn pgrequiressl_as_libpq_reads_it() {
    let with = |env: &[(&str, &str)]| {
        let mut all = vec![("USER", "u")];
        all.extend_from_slice(env);
        resolve(&Config::new(), &all, &NO_MACHINE).map(|c| c.get_ssl_mode())
    };
    for on in ["1", "1yes"] {
        assert_eq!(with(&[("PGREQUIRESSL", on)]), Ok(SslMode::Require));
    }
    // Other values are ignored; PGSSLMODE wins over it (libpq since 9.3).
    assert_eq!(with(&[("PGREQUIRESSL", "0")]), Ok(SslMode::Prefer));
    assert_eq!(with(&[("PGREQUIRESSL", "yes")]), Ok(SslMode::Prefer));
    assert_eq!(
        with(&[("PGREQUIRESSL", "1"), ("PGSSLMODE", "disable")]),
        Ok(SslMode::Disable)
    );
}

#[test]
fn session_env_becomes_options() {
    let env = [
        ("USER", "u"),
        ("PGDATESTYLE", "ISO, MDY"),
        ("PGTZ", "Europe/Paris"),
        ("PGGEQO", "off"),
    ];
    let c = resolve(&Config::new(), &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    let options = c.get_options().unwrap_or_default();
    assert_eq!(
        options,
        r"-c datestyle=ISO,\ MDY -c timezone=Europe/Paris -c geqo=off"
    );
    assert_eq!(
        options::split_options(options),
        [
            "-c",
            "datestyle=ISO, MDY",
            "-c",
            "timezone=Europe/Paris",
            "-c",
            "geqo=off"
        ]
    );
    // After the DSN's options, so they win as libpq's startup-packet settings do; resolving
    // again adds nothing.
    let c = resolve(&parse("options='-c geqo=on'"), &env, &NO_MACHINE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.get_options(),
        Some(r"-c geqo=on -c datestyle=ISO,\ MDY -c timezone=Europe/Paris -c geqo=off")
    );
    assert_eq!(resolve(&c, &env, &NO_MACHINE), Ok(c));
    // "default" sends nothing, in any case.
    let c = resolve(
        &Config::new(),
        &[("USER", "u"), ("PGTZ", "DEFAULT"), ("PGGEQO", "default")],
        &NO_MACHINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_options(), None);
    // A value cannot smuggle in another switch: it stays one argument.
    let c = resolve(
        &Config::new(),
        &[("USER", "u"), ("PGTZ", "UTC -c client_encoding=latin1")],
        &NO_MACHINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let options = c.get_options().unwrap_or_default();
    assert_eq!(
        options::split_options(options),
        ["-c", r"timezone=UTC -c client_encoding=latin1"]
    );
}

#[test]
fn env_values_that_are_not_utf8() {
    let bad = |var: &'static str| {
        let env = move |name: &str| match name {
            "USER" => Some(b"u".to_vec()),
            n if n == var => Some(b"re\xffquire".to_vec()),
            _ => None,
        };
        Config::new()
            .resolve_bytes(&env, &NO_MACHINE)
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        bad("PGCHANNELBINDING"),
        Err("value of \"channel_binding\" is not valid UTF-8 (from PGCHANNELBINDING)".into())
    );
    assert_eq!(bad("PGTZ"), Err("PGTZ is not valid UTF-8".into()));
    // A password is bytes, as in libpq.
    let c = bad("PGPASSWORD").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_password(), Some(&b"re\xffquire"[..]));
}

#[test]
fn env_errors_never_contain_the_password() {
    for (var, value) in [
        ("PGCHANNELBINDING", "always"),
        ("PGPORT", "x"),
        ("PGSERVICE", "s"),
        ("PGOPTIONS", "-c client_encoding=x"),
    ] {
        let e = resolve(
            &Config::new(),
            &[("USER", "u"), ("PGPASSWORD", "secret123"), (var, value)],
            &NO_MACHINE,
        );
        assert!(
            e.as_ref().is_err_and(|e| !e.contains("secret")),
            "{var}: {e:?}"
        );
    }
    assert_eq!(
        resolve(
            &Config::new(),
            &[("USER", "u"), ("PGPASSWORD", "sec\0ret123")],
            &NO_MACHINE
        ),
        Err("password contains a NUL byte (from PGPASSWORD)".into())
    );
}

#[test]
fn resolve_returns_a_validated_config() {
    // What validate() refuses, resolve() refuses, so connecting needs no second check.
    let mut tls = Config::new();
    tls.user("u")
        .ssl_mode(SslMode::Require)
        .ssl_root_cert("system");
    assert_eq!(
        resolve(&tls, &[], &NO_MACHINE).map(|c| c.get_ssl_mode()),
        Err("weak sslmode \"require\" may not be used with sslrootcert=system (use \"verify-full\")".into())
    );
    let mut enc = Config::new();
    enc.user("u").options("-c client_encoding=latin1");
    assert_eq!(
        resolve(&enc, &[], &NO_MACHINE),
        Err("options must not set client_encoding: pgwire-lite always uses UTF8".into())
    );
    let c = resolve(&parse("host=a,b port=1"), &[("USER", "u")], &NO_MACHINE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.validate(), Ok(()));
}

// ---- libpq's files: the service file and the password file's location ----

/// A fresh directory for one test's files, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("pgwire-lite-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SERVICE: &str = "[app]\n\
    host=svc-host\n\
    port=6001\n\
    user=svc_user\n\
    dbname=svc_db\n\
    application_name=svc_app\n\
    sslmode=disable\n\
    [other]\n\
    host=other-host\n";

#[test]
fn service_values_sit_between_dsn_and_environment() {
    let dir = TempDir::new("svc-precedence");
    let file = dir.write("pg_service.conf", SERVICE);
    let dsn = parse(&format!("service=app servicefile={file} host=dsn-host"));
    let env = [
        ("PGPORT", "7000"),
        ("PGAPPNAME", "env_app"),
        ("PGOPTIONS", "-c geqo=off"),
        ("PGUSER", "env_user"),
    ];
    let c = resolve(&dsn, &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.get_hosts(),
        &[tcp("dsn-host")],
        "the DSN wins over the service"
    );
    assert_eq!(c.get_ports(), &[6001], "the service wins over PGPORT");
    assert_eq!(c.get_user(), Some("svc_user"));
    assert_eq!(c.get_dbname(), Some("svc_db"));
    assert_eq!(c.get_application_name(), Some("svc_app"));
    assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    assert_eq!(
        c.get_options(),
        Some("-c geqo=off"),
        "unset in the service: env"
    );
    assert_eq!(c.get_service(), Some("app"));
    // Resolving again reads no file: the service was merged in once.
    drop(dir);
    assert_eq!(resolve(&c, &[], &NO_MACHINE), Ok(c));
}

#[test]
fn service_and_service_file_from_the_environment() {
    let dir = TempDir::new("svc-env");
    let file = dir.write("services", SERVICE);
    let env = [
        ("PGSERVICE", "other"),
        ("PGSERVICEFILE", file.as_str()),
        ("USER", "u"),
    ];
    let c = resolve(&Config::new(), &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_hosts(), &[tcp("other-host")]);
    assert_eq!(c.get_servicefile(), Some(Path::new(&file)));
    // service= in the DSN wins over PGSERVICE.
    let c = resolve(&parse("service=app"), &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_hosts(), &[tcp("svc-host")]);
    // A URL takes it as a query parameter.
    let url = format!("postgresql:///?service=app&servicefile={file}");
    let c = resolve(&parse(&url), &[("USER", "u")], &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.get_ports(), &[6001]);
}

#[test]
fn service_from_home_then_sysconfdir() {
    let home = TempDir::new("svc-home");
    let sys = TempDir::new("svc-sys");
    home.write(".pg_service.conf", "[app]\nhost=from-home\n");
    sys.write(
        "pg_service.conf",
        "[app]\nhost=from-sys\n[sysonly]\nhost=sys-host\n",
    );
    let home_dir = home.0.to_string_lossy().into_owned();
    let sys_dir = sys.0.to_string_lossy().into_owned();
    let env = [
        ("USER", "u"),
        ("HOME", home_dir.as_str()),
        ("PGSYSCONFDIR", sys_dir.as_str()),
    ];
    let host_of = |service: &str| {
        resolve(&parse(&format!("service={service}")), &env, &NO_MACHINE)
            .map(|c| c.get_hosts().to_vec())
    };
    assert_eq!(host_of("app"), Ok(vec![tcp("from-home")]));
    assert_eq!(host_of("sysonly"), Ok(vec![tcp("sys-host")]));
    assert_eq!(
        host_of("nope"),
        Err(format!(
            "definition of service \"nope\" not found (searched \"{}\", \"{}\")",
            home.0.join(".pg_service.conf").display(),
            sys.0.join("pg_service.conf").display()
        ))
    );
}

#[test]
fn service_file_errors_name_the_file_and_line() {
    let dir = TempDir::new("svc-errors");
    let cases = [
        (
            "[s]\nhost=h\nport=x\n",
            "invalid port \"x\" in service file \"{f}\", line 3",
        ),
        (
            "[s]\nsslmode=sometimes\n",
            "invalid sslmode value: \"sometimes\" (in service file \"{f}\", line 2)",
        ),
        (
            "[s]\nbogus=1\n",
            "invalid connection option \"bogus\" (in service file \"{f}\", line 2)",
        ),
        (
            "[s]\nhost = h\n",
            "invalid connection option \"host \" (in service file \"{f}\", line 2)",
        ),
        (
            "[s]\nhostaddr=1.2.3.4\n",
            "connection option \"hostaddr\" is not supported (in service file \"{f}\", line 2)",
        ),
        (
            "[s]\nservice=t\n",
            "nested service specifications not supported in service file \"{f}\", line 2",
        ),
        (
            "[s]\nkeepalives=x\n",
            "invalid integer value \"x\" for connection option \"keepalives\" (in service file \"{f}\", line 2)",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = dir.write(&format!("svc{i}"), text);
        let c = parse(&format!("service=s servicefile={file}"));
        assert_eq!(
            resolve(&c, &[("USER", "u")], &NO_MACHINE),
            Err(expected.replace("{f}", &file)),
            "{text:?}"
        );
    }
}

#[test]
fn service_password_counts_as_given_and_stays_secret() {
    let dir = TempDir::new("svc-password");
    let file = dir.write(
        "svc",
        "[s]\npassword=svc-secret-pw\nport=nope-svc-secret-pw\n",
    );
    let c = parse(&format!("service=s servicefile={file} user=u"));
    let err = resolve(&c, &[], &NO_MACHINE).err().unwrap_or_default();
    assert!(err.starts_with("invalid port"), "{err}");
    let file = dir.write("svc2", "[s]\npassword=svc-secret-pw\n");
    let c = parse(&format!("service=s servicefile={file} user=u"));
    let c = resolve(
        &c,
        &[("HOME", "/home/u"), ("PGPASSWORD", "env-pw")],
        &NO_MACHINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.get_password(),
        Some(&b"svc-secret-pw"[..]),
        "the service wins over PGPASSWORD"
    );
    assert_eq!(
        c.get_passfile(),
        None,
        "a given password needs no password file"
    );
    assert!(!format!("{c:?}").contains("svc-secret-pw"));
}

#[test]
fn keys_without_env_vars_keep_their_dsn_value_against_the_service() {
    let dir = TempDir::new("svc-keepalives");
    let file = dir.write("svc", "[s]\nkeepalives=0\nkeepalives_idle=99\n");
    let c = parse(&format!(
        "service=s servicefile={file} user=u keepalives=1 keepalives_idle=5"
    ));
    let c = resolve(&c, &[], &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), Some(Duration::from_secs(5)));
    let c = parse(&format!("service=s servicefile={file} user=u"));
    let c = resolve(&c, &[], &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.get_keepalives());
}

/// A value each supported key accepts, different from what the service file below says.
const DSN_VALUES: &[(&str, &str)] = &[
    ("host", "dsn-host"),
    ("port", "7001"),
    ("user", "dsn_user"),
    ("password", "dsn-pw"),
    ("dbname", "dsn_db"),
    ("options", "-c geqo=off"),
    ("application_name", "dsn_app"),
    ("fallback_application_name", "dsn_fallback"),
    ("connect_timeout", "7"),
    ("client_encoding", "UTF8"),
    ("keepalives", "1"),
    ("keepalives_idle", "7"),
    ("keepalives_interval", "7"),
    ("keepalives_count", "7"),
    ("tcp_user_timeout", "7"),
    ("target_session_attrs", "read-write"),
    ("sslmode", "verify-full"),
    ("require_auth", "md5"),
    ("gssencmode", "disable"),
    ("channel_binding", "disable"),
    ("load_balance_hosts", "disable"),
    ("statement_cache_capacity", "7"),
    ("multiplexing", "on"),
    ("sslrootcert", "/dsn/root.crt"),
    ("sslcert", "/dsn/client.crt"),
    ("sslkey", "/dsn/client.key"),
    ("sslsni", "1"),
    ("ssl_min_protocol_version", "TLSv1.2"),
    ("ssl_max_protocol_version", "TLSv1.3"),
    ("sslnegotiation", "postgres"),
    ("sslcrl", "/dsn/root.crl"),
    ("sslcrldir", "/dsn/crls"),
    ("passfile", "/dsn/pgpass"),
    ("servicefile", "(the test's file)"),
];

#[test]
fn service_never_overrides_a_key_the_dsn_gave() {
    let dir = TempDir::new("svc-every-key");
    let file = dir.write(
        "svc",
        "[s]\nhost=svc-host\nport=6001\nuser=svc_user\npassword=svc-pw\ndbname=svc_db\n\
         options=-c jit=off\napplication_name=svc_app\nfallback_application_name=svc_fallback\n\
         connect_timeout=9\nclient_encoding=utf-8\nkeepalives=0\nkeepalives_idle=9\n\
         keepalives_interval=9\nkeepalives_count=9\ntcp_user_timeout=9\n\
         target_session_attrs=read-only\nsslmode=require\nrequire_auth=scram-sha-256\n\
         gssencmode=prefer\nchannel_binding=prefer\nload_balance_hosts=random\n\
         statement_cache_capacity=9\nmultiplexing=off\nsslrootcert=/svc/root.crt\nsslcert=/svc/client.crt\n\
         sslkey=/svc/client.key\nsslsni=0\nssl_min_protocol_version=TLSv1.3\n\
         ssl_max_protocol_version=TLSv1.3\nsslnegotiation=direct\nsslcrl=/svc/root.crl\n\
         sslcrldir=/svc/crls\npassfile=/svc/pgpass\nservicefile=/svc/other\n",
    );
    // Every supported key but `service` itself is in the table.
    for key in SUPPORTED_KEYS.iter().filter(|k| **k != "service") {
        assert!(
            DSN_VALUES.iter().any(|(k, _)| k == key),
            "{key} has no DSN value in this test"
        );
    }
    for (key, value) in DSN_VALUES {
        let value = if *key == "servicefile" {
            file.as_str()
        } else {
            value
        };
        let base = format!("service=s servicefile={file} {}", dsn(key, value));
        let from_dsn = resolve(&parse(&base), &[], &NO_MACHINE)
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        // What the same key gives with no service at all: the service must not have changed it.
        let alone = resolve(&parse(&dsn(key, value)), &[("USER", "u")], &NO_MACHINE)
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        let mut probe = Config::new();
        probe
            .set_param(key, value.as_bytes(), params::Origin::KeyValue)
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        assert!(probe.is_given(key), "{key} does not know it was given");
        assert_eq!(
            key_value(&from_dsn, key),
            key_value(&alone, key),
            "the service changed {key}={value}"
        );
    }
}

/// The value of `key` in `c`, printed.
fn key_value(c: &Config, key: &str) -> String {
    match key {
        "host" => format!("{:?}", c.hosts),
        "port" => format!("{:?}", c.ports),
        "user" => format!("{:?}", c.user),
        "password" => format!("{:?}", c.password),
        "dbname" => format!("{:?}", c.dbname),
        "options" => format!("{:?}", c.options),
        "application_name" => format!("{:?}", c.application_name),
        "fallback_application_name" => format!("{:?}", c.fallback_application_name),
        "connect_timeout" => format!("{:?}", c.connect_timeout),
        "client_encoding" => format!("{:?}", c.client_encoding),
        "keepalives" => format!("{:?}", c.keepalives),
        "keepalives_idle" => format!("{:?}", c.keepalives_idle),
        "keepalives_interval" => format!("{:?}", c.keepalives_interval),
        "keepalives_count" => format!("{:?}", c.keepalives_count),
        "tcp_user_timeout" => format!("{:?}", c.tcp_user_timeout),
        "target_session_attrs" => format!("{:?}", c.target_session_attrs),
        "sslmode" => format!("{:?}", c.ssl_mode),
        "require_auth" => format!("{:?}", c.require_auth),
        "gssencmode" => format!("{:?}", c.gssencmode),
        "channel_binding" => format!("{:?}", c.channel_binding),
        "load_balance_hosts" => format!("{:?}", c.load_balance_hosts),
        "statement_cache_capacity" => format!("{:?}", c.statement_cache_capacity),
        "sslrootcert" => format!("{:?}", c.tls.root_cert),
        "sslcert" => format!("{:?}", c.tls.cert),
        "sslkey" => format!("{:?}", c.tls.key),
        "sslsni" => format!("{:?}", c.tls.sni),
        "ssl_min_protocol_version" => format!("{:?}", c.tls.min_version),
        "ssl_max_protocol_version" => format!("{:?}", c.tls.max_version),
        "sslnegotiation" => format!("{:?}", c.tls.negotiation),
        "multiplexing" => format!("{:?}", c.multiplexing),
        "sslcrl" => format!("{:?}", c.tls.crl),
        "sslcrldir" => format!("{:?}", c.tls.crl_dir),
        "passfile" => format!("{:?}", c.passfile),
        "servicefile" => format!("{:?}", c.servicefile),
        other => panic!("key_value does not know {other}"),
    }
}

#[test]
fn passfile_location_as_libpq_chooses_it() {
    let home = [("USER", "u"), ("HOME", "/home/u")];
    let passfile = |cfg: &Config, env: &[(&str, &str)]| {
        resolve(cfg, env, &NO_MACHINE).map(|c| c.get_passfile().map(Path::to_path_buf))
    };
    #[cfg(unix)]
    assert_eq!(
        passfile(&Config::new(), &home),
        Ok(Some("/home/u/.pgpass".into()))
    );
    #[cfg(not(unix))]
    assert_eq!(
        passfile(&Config::new(), &[("USER", "u"), ("APPDATA", "C:\\AppData")]),
        Ok(Some(
            std::path::PathBuf::from("C:\\AppData")
                .join("postgresql")
                .join("pgpass.conf")
        ))
    );
    assert_eq!(
        passfile(
            &Config::new(),
            &[home[0], home[1], ("PGPASSFILE", "/etc/pw")]
        ),
        Ok(Some("/etc/pw".into()))
    );
    assert_eq!(
        passfile(
            &parse("passfile=/dsn/pw"),
            &[home[0], home[1], ("PGPASSFILE", "/etc/pw")]
        ),
        Ok(Some("/dsn/pw".into()))
    );
    assert_eq!(passfile(&parse("password=given"), &home), Ok(None));
    assert_eq!(
        passfile(&Config::new(), &[("USER", "u"), ("PGPASSWORD", "p")]),
        Ok(None)
    );
    // Without a home directory, no default file.
    assert_eq!(passfile(&Config::new(), &[("USER", "u")]), Ok(None));
}

// ---- no input panics ----

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = Config::parse(&s);
    }

    #[test]
    fn url_like_strings_never_panic(
        scheme in prop::sample::select(vec!["postgresql://", "postgres://", "x://", ""]),
        rest in "[a-z0-9:@/\\[\\],%?=&#._ '\\\\-]{0,40}",
    ) {
        let s = format!("{scheme}{rest}");
        if let Ok(c) = Config::parse(&s) {
            prop_assert_eq!(c.validate(), Ok(()));
            let _ = c.targets();
            let _ = resolve(&c, &[("USER", "u")], &NO_MACHINE);
        }
    }

    #[test]
    fn key_value_like_strings_never_panic(
        s in "((host|port|user|password|dbname|options|connect_timeout|x) ?= ?('[^']{0,8}'?|[a-z0-9,\\\\ /:-]{0,8}) ?){0,6}",
    ) {
        let _ = Config::parse(&s);
    }

    #[test]
    fn url_password_never_in_errors(
        pw in "Zq[A-Za-z0-9]{6,12}",
        rest in "[a-y0-9:@/\\[\\],%?=&._-]{0,30}",
    ) {
        let s = format!("postgresql://u:{pw}@{rest}");
        if let Err(e) = Config::parse(&s) {
            prop_assert!(!e.to_string().contains(&pw), "{} -> {}", s, e);
        }
    }
}
