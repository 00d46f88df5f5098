//! TLS against real servers: a throwaway cluster with `ssl = on` and certificates made here
//! with rcgen (a CA, a server certificate for `localhost` only, a client certificate), and the
//! shared cluster, which has TLS off. Fake servers cover what a real server never does (the
//! SSLRequest attacks).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use pg_harness::{Cluster, Role, cluster};
use pgwire_lite::{Config, Connection, Error, SqlState};
use pool_core::PsqlPool;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn make_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A leaf certificate signed by `ca`: `sans` as DNS names, `cn` as the subject's CN (what the
/// server's `cert` method maps to the user). Returns (cert PEM, key PEM).
fn make_leaf(ca: &Ca, sans: &[&str], cn: &str) -> (String, String) {
    make_leaf_numbered(ca, sans, cn, None)
}

/// [`make_leaf`] with a given serial number (for a revocation list to name).
fn make_leaf_numbered(ca: &Ca, sans: &[&str], cn: &str, serial: Option<u64>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serial_number = serial.map(rcgen::SerialNumber::from);
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The TLS cluster and the client-side files: `ca.crt` (the right CA), `other-ca.crt` (a CA
/// that signed nothing here), `client.crt`/`client.key` (CN `cert_user`, key 0600),
/// `open.key` (the same key, 0644).
struct Tls {
    cluster: Cluster,
    dir: PathBuf,
}

impl Tls {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A DSN for `user` (password `pw`, if any) on `host`, with `extra` key=value pairs.
    fn dsn(&self, host: &str, user: &str, extra: &str) -> String {
        format!(
            "host={host} port={} dbname={} user={user} connect_timeout=10 {extra}",
            self.cluster.port(),
            self.cluster.db_name()
        )
    }
}

const TLS_ROLES: &str = "CREATE ROLE cert_user LOGIN; CREATE ROLE tls_only LOGIN; \
                         CREATE ROLE plain_only LOGIN; CREATE ROLE tls_pw LOGIN PASSWORD 'tls-secret-pw';";

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let ca = make_ca("psqlpool test CA");
        let (server_crt, server_key) =
            make_leaf_numbered(&ca, &["localhost"], "localhost", Some(SERVER_SERIAL));
        let (client_crt, client_key) = make_leaf(&ca, &[], "cert_user");
        let other = make_ca("some other CA");
        sweep_dead_client_dirs();
        let dir = std::env::temp_dir().join(format!("psqlpool-tls-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir.join("ca.crt"), &ca.cert.pem(), 0o644);
        write(&dir.join("other-ca.crt"), &other.cert.pem(), 0o644);
        write(&dir.join("client.crt"), &client_crt, 0o644);
        write(&dir.join("client.key"), &client_key, 0o600);
        write(&dir.join("open.key"), &client_key, 0o644);
        // Revocation lists: the server's certificate revoked, another serial revoked, and one
        // from a CA that issued nothing here; and a directory holding the first.
        write(&dir.join("revoked.crl"), &crl(&ca, SERVER_SERIAL), 0o644);
        write(&dir.join("other.crl"), &crl(&ca, SERVER_SERIAL + 1), 0o644);
        write(
            &dir.join("foreign.crl"),
            &crl(&other, SERVER_SERIAL + 1),
            0o644,
        );
        std::fs::create_dir_all(dir.join("crldir")).unwrap();
        write(
            &dir.join("crldir").join("a.pem"),
            &crl(&ca, SERVER_SERIAL),
            0o644,
        );
        let ca_pem = ca.cert.pem();
        let cluster = Cluster::start_throwaway_with(|data| {
            write(&data.join("server.crt"), &server_crt, 0o644);
            // The server refuses a key others can read.
            write(&data.join("server.key"), &server_key, 0o600);
            write(&data.join("root.crt"), &ca_pem, 0o644);
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).unwrap();
            text.push_str(
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 ssl_ca_file = 'root.crt'\n",
            );
            std::fs::write(&conf, text).unwrap();
            // First match wins: these lines go before the harness's own.
            let hba = data.join("pg_hba.conf");
            let old = std::fs::read_to_string(&hba).unwrap();
            let lines = "hostssl all cert_user 127.0.0.1/32 cert\n\
                         hostnossl all tls_only 127.0.0.1/32 reject\n\
                         host all tls_only 127.0.0.1/32 trust\n\
                         hostssl all plain_only 127.0.0.1/32 reject\n\
                         host all plain_only 127.0.0.1/32 trust\n\
                         hostnossl all tls_pw 127.0.0.1/32 reject\n\
                         host all tls_pw 127.0.0.1/32 scram-sha-256\n";
            std::fs::write(&hba, format!("{lines}{old}")).unwrap();
        });
        cluster.psql(TLS_ROLES);
        Tls { cluster, dir }
    })
}

/// The serial number of the TLS cluster's server certificate.
const SERVER_SERIAL: u64 = 0x7001;

/// A revocation list signed by `ca` that revokes `serial`.
fn crl(ca: &Ca, serial: u64) -> String {
    let params = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(serial),
            revocation_time: rcgen::date_time_ymd(2024, 1, 1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params.signed_by(&ca.cert, &ca.key).unwrap().pem().unwrap()
}

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

async fn connect(dsn: &str) -> Result<Connection, Error> {
    let cfg: Config = dsn.parse().expect("DSN parses");
    Connection::connect(&cfg).await
}

/// Whether the server sees this session as TLS; checked against what the client says.
async fn server_says_tls(c: &mut Connection) -> bool {
    let on: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on, c.is_tls(), "client and server disagree about TLS");
    on
}

#[tokio::test]
async fn sslmode_against_a_server_with_tls() {
    let t = tls();
    let ca = format!("sslrootcert={}", t.file("ca.crt"));
    // (sslmode, extra keys, TLS expected)
    for (mode, extra, want_tls) in [
        ("disable", "", false),
        ("allow", "", false),
        ("prefer", "", true),
        ("require", "", true),
        ("require", ca.as_str(), true),
        ("verify-ca", ca.as_str(), true),
        ("verify-full", ca.as_str(), true),
    ] {
        let dsn = t.dsn(
            "localhost",
            "trust_user",
            &format!("sslmode={mode} {extra}"),
        );
        let mut c = connect(&dsn)
            .await
            .unwrap_or_else(|e| panic!("sslmode={mode} {extra}: {e}"));
        assert_eq!(server_says_tls(&mut c).await, want_tls, "sslmode={mode}");
    }
}

#[tokio::test]
async fn sslmode_against_a_server_without_tls() {
    let t = tls();
    let base = cluster().url(Role::Trust);
    for (mode, ok) in [
        ("disable", true),
        ("allow", true),
        ("prefer", true),
        ("require", false),
        ("verify-ca", false),
        ("verify-full", false),
    ] {
        let dsn = format!(
            "{base}?sslmode={mode}&sslrootcert={}",
            pg_harness::percent_encode(&t.file("ca.crt"))
        );
        match connect(&dsn).await {
            Ok(mut c) => {
                assert!(ok, "sslmode={mode} connected without TLS");
                assert!(!server_says_tls(&mut c).await);
            }
            Err(e) => {
                assert!(!ok, "sslmode={mode}: {e}");
                assert!(
                    e.to_string().contains("server does not support SSL (TLS)"),
                    "sslmode={mode}: {e}"
                );
            }
        }
    }
}

#[tokio::test]
async fn allow_and_prefer_take_their_second_chance() {
    let t = tls();
    // allow: the plain session is refused (hostnossl reject), so TLS is tried.
    let mut c = connect(&t.dsn("127.0.0.1", "tls_only", "sslmode=allow"))
        .await
        .unwrap();
    assert!(server_says_tls(&mut c).await);
    // prefer: the TLS session is refused (hostssl reject), so plain text is tried.
    let mut c = connect(&t.dsn("127.0.0.1", "plain_only", "sslmode=prefer"))
        .await
        .unwrap();
    assert!(!server_says_tls(&mut c).await);
    // Neither gets a second chance where libpq gives none.
    let e = connect(&t.dsn("127.0.0.1", "tls_only", "sslmode=disable"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no encryption"), "{e}");
    let e = connect(&t.dsn("127.0.0.1", "plain_only", "sslmode=require"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("SSL encryption"), "{e}");
}

#[tokio::test]
async fn certificate_checks() {
    let t = tls();
    let right = t.file("ca.crt");
    let wrong = t.file("other-ca.crt");
    // (host, sslmode, root certificate, accepted?)
    for (host, mode, root, ok) in [
        // The wrong CA is refused whenever the chain is checked.
        ("localhost", "verify-ca", &wrong, false),
        ("localhost", "verify-full", &wrong, false),
        ("localhost", "require", &wrong, false),
        // The certificate names localhost only: 127.0.0.1 passes verify-ca, not verify-full.
        ("127.0.0.1", "verify-ca", &right, true),
        ("127.0.0.1", "verify-full", &right, false),
        ("localhost", "verify-full", &right, true),
    ] {
        let dsn = t.dsn(
            host,
            "trust_user",
            &format!("sslmode={mode} sslrootcert={root}"),
        );
        let r = connect(&dsn).await;
        let what = format!("{host} sslmode={mode} root={root}");
        match (r, ok) {
            (Ok(mut c), true) => assert!(server_says_tls(&mut c).await, "{what}"),
            (Err(e), false) => {
                let s = e.to_string();
                assert!(
                    s.contains("SSL error") && s.contains("certificate"),
                    "{what}: {s}"
                );
                if root == &wrong {
                    assert!(s.contains("UnknownIssuer"), "{what}: {s}");
                } else {
                    assert!(
                        s.contains("not valid for name \"127.0.0.1\""),
                        "{what}: {s}"
                    );
                }
            }
            (Ok(_), false) => panic!("{what}: accepted"),
            (Err(e), true) => panic!("{what}: {e}"),
        }
    }
    // verify-ca without any root certificate is refused before connecting, as libpq does.
    let e = connect(&t.dsn(
        "localhost",
        "trust_user",
        "sslmode=verify-ca sslrootcert=/nonexistent/root.crt",
    ))
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("root certificate file \"/nonexistent/root.crt\" does not exist"),
        "{e}"
    );
}

#[tokio::test]
async fn client_certificate_login() {
    let t = tls();
    let certs = format!(
        "sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        t.file("ca.crt"),
        t.file("client.crt"),
        t.file("client.key")
    );
    let mut c = connect(&t.dsn("localhost", "cert_user", &certs))
        .await
        .unwrap();
    assert!(server_says_tls(&mut c).await);
    let who: String = c
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "cert_user");

    // Without a certificate the `cert` line refuses.
    let no_cert = format!(
        "sslmode=verify-full sslrootcert={} sslcert=/nonexistent.crt",
        t.file("ca.crt")
    );
    let e = connect(&t.dsn("localhost", "cert_user", &no_cert))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("28000"), "{e}");

    // A key others can read is refused before anything is sent, naming the file only.
    let open = format!(
        "sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        t.file("ca.crt"),
        t.file("client.crt"),
        t.file("open.key")
    );
    let e = connect(&t.dsn("localhost", "cert_user", &open))
        .await
        .unwrap_err();
    let s = e.to_string();
    assert!(s.contains("has group or world access"), "{s}");
    assert!(s.contains("open.key") && !s.contains("PRIVATE KEY"), "{s}");
}

#[tokio::test]
async fn scram_over_tls_and_secrets_stay_out_of_errors() {
    let t = tls();
    let dsn = t.dsn(
        "localhost",
        "tls_pw",
        &format!(
            "password=tls-secret-pw sslmode=verify-full sslrootcert={}",
            t.file("ca.crt")
        ),
    );
    let mut c = connect(&dsn).await.unwrap();
    assert!(server_says_tls(&mut c).await);
    // The failures above and a failed handshake: no password, no key in any message or Debug.
    let wrong = dsn.replace(&t.file("ca.crt"), &t.file("other-ca.crt"));
    let e = connect(&wrong).await.unwrap_err();
    for shown in [
        e.to_string(),
        format!("{e:?}"),
        format!("{:?}", c.cancel_token()),
    ] {
        assert!(!shown.contains("tls-secret-pw"), "{shown}");
    }
    let cfg: Config = wrong.parse().unwrap();
    assert!(!format!("{cfg:?}").contains("tls-secret-pw"));
}

#[tokio::test]
async fn large_requests_and_results_over_tls() {
    let t = tls();
    let dsn = t.dsn(
        "localhost",
        "trust_user",
        &format!("sslmode=verify-full sslrootcert={}", t.file("ca.crt")),
    );
    let mut c = connect(&dsn).await.unwrap();
    // A request whose tail rustls kept back would wait for ever: fail instead.
    tokio::time::timeout(Duration::from_secs(60), large_round_trips(&mut c))
        .await
        .expect("large requests over TLS finish");
}

async fn large_round_trips(c: &mut Connection) {
    // Far more than the socket buffers hold: rustls must not keep the tail of a request back.
    let big = "x".repeat(16 << 20);
    let n: i32 = c
        .query_one("SELECT length($1::text)", &[&big])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 16 << 20);
    let sql = format!("SELECT length('{big}')");
    let results = c.simple_query(&sql).await.unwrap();
    assert_eq!(results[0].rows()[0].raw(0).unwrap(), Some(&b"16777216"[..]));
    let back: String = c
        .query_one("SELECT repeat('y', 8 << 20)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back.len(), 8 << 20);
    // Server output while we write (notices at every row) must not deadlock either.
    c.batch_execute("SET client_min_messages = debug5")
        .await
        .unwrap();
    let n: i32 = c
        .query_one("SELECT length($1::text)", &[&big])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 16 << 20);
}

#[tokio::test]
async fn channel_binding() {
    let t = tls();
    let root = format!("sslrootcert={}", t.file("ca.crt"));
    // SCRAM-SHA-256-PLUS: `require` accepts nothing else, so success means it was used.
    for cb in ["require", "prefer", "disable"] {
        let dsn = t.dsn(
            "localhost",
            "tls_pw",
            &format!("password=tls-secret-pw sslmode=verify-full {root} channel_binding={cb}"),
        );
        let mut c = connect(&dsn)
            .await
            .unwrap_or_else(|e| panic!("channel_binding={cb}: {e}"));
        assert!(server_says_tls(&mut c).await);
    }
    // (host/role DSN, expected refusal) under channel_binding=require.
    let md5 = format!(
        "{} password={} sslmode=require channel_binding=require",
        t.dsn("127.0.0.1", Role::Md5.user(), ""),
        Role::Md5.password().unwrap()
    );
    let trust = t.dsn(
        "127.0.0.1",
        "trust_user",
        "sslmode=require channel_binding=require",
    );
    let plain = format!("{}?channel_binding=require", cluster().url(Role::Scram));
    for (dsn, why) in [
        (
            md5,
            "channel binding required but not supported by server's authentication request",
        ),
        (trust, "server authenticated client without channel binding"),
        (plain, "channel binding required, but SSL not in use"),
    ] {
        let e = connect(&dsn).await.unwrap_err();
        assert!(matches!(e, Error::Auth(_)), "{e:?}");
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[tokio::test]
async fn cancel_goes_over_tls_too() {
    let t = tls();
    // Through a proxy that records how each connection starts: the session's and the cancel
    // request's must both start with an SSLRequest.
    let firsts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let upstream = t.cluster.port();
    let seen = firsts.clone();
    let proxy = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 8];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                seen.lock().unwrap().push(first);
                let mut server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                server.write_all(&first).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    let dsn = format!(
        "host=localhost port={proxy_port} dbname={} user=trust_user connect_timeout=10 \
         sslmode=verify-full sslrootcert={}",
        t.cluster.db_name(),
        t.file("ca.crt")
    );
    let mut c = connect(&dsn).await.unwrap();
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query().await
    });
    let started = std::time::Instant::now();
    let e = c.execute("SELECT pg_sleep(30)", &[]).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some(SqlState::QUERY_CANCELED), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    canceller.await.unwrap().unwrap();
    // The connection goes on, still over TLS.
    assert!(server_says_tls(&mut c).await);
    let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    assert_eq!(*firsts.lock().unwrap(), vec![ssl_request, ssl_request]);
    proxy.abort();
}

#[tokio::test]
async fn pooled_tls_connections() {
    let t = tls();
    let dsn = format!(
        "postgresql://tls_pw:tls-secret-pw@localhost:{}/{}?sslmode=verify-full&sslrootcert={}",
        t.cluster.port(),
        t.cluster.db_name(),
        pg_harness::percent_encode(&t.file("ca.crt"))
    );
    let pool = common::started(
        PsqlPool::builder()
            .dsn(dsn)
            .max_db_pool_size(2)
            .wait_timeout(Duration::from_secs(5)),
    )
    .await;
    let pid = {
        let mut c = pool.connection().await.unwrap();
        assert!(server_says_tls(c.connection_mut().await.unwrap()).await);
        c.backend_pid()
    };
    // The idle check sees a TLS connection the server ended: the next checkout is a new one.
    let killed = t
        .cluster
        .psql(&format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(killed, "t");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let mut c = pool.connection().await.unwrap();
        let n: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(n, 1);
        assert!(server_says_tls(c.connection_mut().await.unwrap()).await);
    }
}

// ---- fake servers: the SSLRequest attacks ----

/// Accepts one connection, reads the SSLRequest, then runs `script`; returns what connecting
/// with `sslmode` produced.
async fn fake<F, Fut>(sslmode: &str, script: F) -> Result<Connection, Error>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 8];
        s.read_exact(&mut req).await.unwrap();
        assert_eq!(
            req,
            [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
            "an SSLRequest comes first"
        );
        script(s).await;
    });
    let cfg: Config = format!(
        "host=127.0.0.1 port={port} user=alice password=secret-pw dbname=db \
         connect_timeout=5 sslmode={sslmode}"
    )
    .parse()
    .unwrap();
    let r = Connection::connect(&cfg).await;
    // The client closed its socket on failure; every script ends at that EOF.
    let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(finished, Ok(Ok(()))),
        "the fake server's script failed"
    );
    r
}

/// Waits until the client closes the connection.
async fn until_closed(mut s: TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
}

fn error_response(text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (f, v) in [(b'S', "FATAL"), (b'C', "28000"), (b'M', text)] {
        body.push(f);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = vec![b'E'];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

#[tokio::test]
async fn error_reply_to_sslrequest_is_not_shown() {
    // CVE-2024-10977: the text comes from a server nobody has authenticated.
    for mode in ["prefer", "require"] {
        let e = fake(mode, |mut s| async move {
            s.write_all(&error_response(
                "please visit evil.example and type your password",
            ))
            .await
            .unwrap();
            until_closed(s).await;
        })
        .await
        .unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("error response during SSL exchange"),
            "{shown}"
        );
        assert!(!shown.contains("evil"), "{shown}");
        assert!(!matches!(e, Error::Db(_)), "{e:?}");
    }
}

#[tokio::test]
async fn bytes_after_s_are_refused() {
    // CVE-2021-23222: bytes buffered before the handshake would be read as if encrypted.
    let e = fake("require", |mut s| async move {
        let mut reply = b"S".to_vec();
        reply.extend_from_slice(&error_response("injected"));
        s.write_all(&reply).await.unwrap();
        until_closed(s).await;
    })
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("received unencrypted data after SSL response"),
        "{e}"
    );
}

#[tokio::test]
async fn s_then_plain_text_fails_the_handshake() {
    let started = std::time::Instant::now();
    let e = fake("require", |mut s| async move {
        s.write_all(b"S").await.unwrap();
        // Read the ClientHello, answer in plain protocol.
        let mut hello = [0u8; 512];
        let _ = s.read(&mut hello).await;
        s.write_all(&error_response("plain text")).await.unwrap();
        until_closed(s).await;
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("SSL error"), "{e}");
    assert!(!e.to_string().contains("plain text"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "it must fail, not wait"
    );
}

#[tokio::test]
async fn n_under_require_sends_nothing_in_plain_text() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let e = fake("require", |mut s| async move {
        s.write_all(b"N").await.unwrap();
        // Whatever the client sends now would be plain text: there must be nothing.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
        let _ = tx.send(rest);
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("does not support SSL"), "{e}");
    let sent = rx.await.unwrap();
    assert!(sent.is_empty(), "sent in plain text: {sent:?}");
}

/// Removes the certificate directories of earlier test processes that have exited: the shared
/// setup lives for the whole process, so nothing else can remove its own directory.
fn sweep_dead_client_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("psqlpool-tls-client-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// An expired server certificate, from a CA the client trusts: refused under `verify-ca` and
/// `verify-full` with an error that says so; `require` without a root certificate checks
/// nothing (libpq's rule), so it connects. A cluster of its own, started with the expired
/// certificate.
#[tokio::test]
async fn expired_server_certificate() {
    let ca = make_ca("psqlpool expiry CA");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (crt, key) = (cert.pem(), key.serialize_pem());
    let cluster = Cluster::start_throwaway_with(|data| {
        write(&data.join("server.crt"), &crt, 0o644);
        write(&data.join("server.key"), &key, 0o600);
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
    });
    let dir = tls().dir.join(format!("expiry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("expiry-ca.crt");
    write(&root, &ca.cert.pem(), 0o644);
    let dsn = |mode: &str, root: &str| {
        format!(
            "host=localhost port={} dbname={} user=trust_user connect_timeout=10 \
             sslmode={mode} {root}",
            cluster.port(),
            cluster.db_name()
        )
    };
    let with_root = format!("sslrootcert={}", root.display());
    for mode in ["verify-ca", "verify-full"] {
        let e = connect(&dsn(mode, &with_root))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SSL error") && e.contains("certificate expired"),
            "sslmode={mode}: {e}"
        );
    }
    let mut c = connect(&dsn("require", "")).await.unwrap();
    assert!(server_says_tls(&mut c).await);
}

/// `sslnegotiation=direct` (PostgreSQL 17's direct TLS): a PostgreSQL 15 server reads the
/// ClientHello as a malformed startup packet and hangs up, so the attempt fails at once, with
/// an error naming the setting; a 17+ server accepts it. libpq's rule that direct TLS needs
/// `sslmode=require` or stricter is checked before connecting.
#[tokio::test]
async fn direct_tls_negotiation() {
    let t = tls();
    let version: i32 = t
        .cluster
        .psql("SHOW server_version_num")
        .trim()
        .parse()
        .unwrap();
    let started = std::time::Instant::now();
    let r = connect(&t.dsn(
        "localhost",
        "trust_user",
        &format!(
            "sslmode=verify-full sslrootcert={} sslnegotiation=direct",
            t.file("ca.crt")
        ),
    ))
    .await;
    if version >= 170000 {
        assert!(server_says_tls(&mut r.unwrap()).await);
    } else {
        let e = r
            .expect_err("PostgreSQL < 17 cannot accept direct TLS")
            .to_string();
        assert!(
            e.contains("SSL error") && e.contains("sslnegotiation=direct"),
            "{e}"
        );
        // The server hung up; nothing waited for the 10 s connect_timeout.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    for mode in ["disable", "allow", "prefer"] {
        let cfg: Result<Config, _> =
            format!("host=localhost sslmode={mode} sslnegotiation=direct").parse();
        let e = match cfg {
            Err(e) => e.to_string(),
            Ok(cfg) => connect_cfg(&cfg).await.unwrap_err().to_string(),
        };
        assert!(
            e.contains(&format!("weak sslmode \"{mode}\"")),
            "{mode}: {e}"
        );
    }
    // Without sslmode the default, prefer, is as weak.
    let e = match "host=localhost sslnegotiation=direct".parse::<Config>() {
        Err(e) => e.to_string(),
        Ok(cfg) => connect_cfg(&cfg).await.unwrap_err().to_string(),
    };
    assert!(e.contains("weak sslmode \"prefer\""), "{e}");
    let e = "sslnegotiation=indirect"
        .parse::<Config>()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid sslnegotiation value: \"indirect\""),
        "{e}"
    );
}

async fn connect_cfg(cfg: &Config) -> Result<Connection, Error> {
    Connection::connect(cfg).await
}

/// `sslcrl` / `sslcrldir`: a revoked server certificate is refused whenever the chain is
/// checked; a list that revokes something else lets it through; a list from a CA that did not
/// issue the certificate leaves its status unknown, which is refused (libpq checks the whole
/// chain); an unreadable list is an error naming the file.
#[tokio::test]
async fn revocation_lists() {
    let t = tls();
    let root = format!("sslrootcert={}", t.file("ca.crt"));
    for (extra, ok) in [
        (format!("sslcrl={}", t.file("other.crl")), true),
        (format!("sslcrl={}", t.file("revoked.crl")), false),
        (format!("sslcrldir={}", t.file("crldir")), false),
        (format!("sslcrl={}", t.file("foreign.crl")), false),
    ] {
        for mode in ["verify-ca", "verify-full"] {
            let dsn = t.dsn(
                "localhost",
                "trust_user",
                &format!("sslmode={mode} {root} {extra}"),
            );
            match connect(&dsn).await {
                Ok(mut c) if ok => assert!(server_says_tls(&mut c).await),
                Ok(_) => panic!("{mode} {extra}: accepted"),
                Err(e) if !ok => {
                    let e = e.to_string();
                    assert!(
                        e.contains("SSL error: invalid peer certificate"),
                        "{extra}: {e}"
                    );
                    let why = if extra.contains("foreign") {
                        "UnknownRevocationStatus"
                    } else {
                        "Revoked"
                    };
                    assert!(e.contains(why), "{extra}: {e}");
                }
                Err(e) => panic!("{mode} {extra}: {e}"),
            }
        }
    }
    let e = connect(&t.dsn(
        "localhost",
        "trust_user",
        &format!("sslmode=verify-full {root} sslcrl={}", t.file("ca.crt")),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("revocation list") && e.contains("ca.crt"), "{e}");
}
