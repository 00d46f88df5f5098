//! Scripted fake servers on 127.0.0.1:0 for what a real PostgreSQL never does: a SCRAM server
//! that cannot prove it knows the password, unsupported methods, hostile frames.

use base64::Engine;
use pgwire_lite::{Config, Connection, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn auth(kind: i32, data: &[u8]) -> Vec<u8> {
    let mut b = kind.to_be_bytes().to_vec();
    b.extend_from_slice(data);
    msg(b'R', &b)
}

async fn read_startup(s: &mut TcpStream) -> Vec<u8> {
    loop {
        let len = s.read_i32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        // sslmode=prefer asks for TLS first; these servers have none, as a server with
        // ssl=off answers.
        if body == SSL_REQUEST_CODE.to_be_bytes() {
            s.write_all(b"N").await.unwrap();
            continue;
        }
        return body;
    }
}

/// The SSLRequest code (1234 << 16 | 5679).
const SSL_REQUEST_CODE: i32 = 80_877_103;

async fn read_msg(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let tag = s.read_u8().await.unwrap();
    let len = s.read_i32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.unwrap();
    (tag, body)
}

/// Runs `script` against the first connection and returns what connecting produced.
async fn against<F, Fut>(script: F) -> Result<Connection, Error>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        script(s).await;
    });
    let cfg: Config = format!(
        "host=127.0.0.1 port={port} user=alice password=secret-pw dbname=db connect_timeout=5"
    )
    .parse()
    .unwrap();
    let r = Connection::connect(&cfg).await;
    server.abort();
    r
}

/// Plays SCRAM up to the client-final-message and returns the socket.
async fn scram_until_final(mut s: TcpStream) -> TcpStream {
    read_startup(&mut s).await;
    s.write_all(&auth(10, b"SCRAM-SHA-256\0\0")).await.unwrap();
    let (tag, body) = read_msg(&mut s).await;
    assert_eq!(tag, b'p');
    let text = String::from_utf8_lossy(&body).into_owned();
    let nonce = text.split("r=").nth(1).unwrap().to_owned();
    let salt = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef");
    let first = format!("r={nonce}SERVERPART,s={salt},i=4096");
    s.write_all(&auth(11, first.as_bytes())).await.unwrap();
    let (tag, _client_final) = read_msg(&mut s).await;
    assert_eq!(tag, b'p');
    s
}

#[tokio::test]
async fn bad_scram_server_signature_is_an_auth_error() {
    let err = against(|s| async move {
        let mut s = scram_until_final(s).await;
        let v = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        s.write_all(&auth(12, format!("v={v}").as_bytes()))
            .await
            .unwrap();
        s.write_all(&auth(0, b"")).await.unwrap();
        let _ = s.read_u8().await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(!format!("{err:?}").contains("secret-pw"));
}

#[tokio::test]
async fn authentication_ok_before_server_final_is_rejected() {
    let err = against(|s| async move {
        let mut s = scram_until_final(s).await;
        s.write_all(&auth(0, b"")).await.unwrap();
        let _ = s.read_u8().await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(err.to_string().contains("before proving"), "{err}");
}

#[tokio::test]
async fn unsupported_methods_are_named() {
    for (kind, data, name) in [
        (7, &b""[..], "GSSAPI"),
        (9, b"", "SSPI"),
        (2, b"", "Kerberos"),
        (10, b"SCRAM-SHA-256-PLUS\0\0", "SCRAM-SHA-256-PLUS"),
    ] {
        let err = against(move |mut s| async move {
            read_startup(&mut s).await;
            s.write_all(&auth(kind, data)).await.unwrap();
            let _ = s.read_u8().await;
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[tokio::test]
async fn hostile_frames_are_protocol_errors() {
    let cases: Vec<Vec<u8>> = vec![
        // A length field below 4.
        b"R\0\0\0\x02".to_vec(),
        // A huge Authentication message during startup.
        b"R\x10\0\0\0".to_vec(),
        // An unknown tag.
        msg(b'!', b"x"),
        // A DataRow before anything was asked.
        msg(b'D', b"\0\0"),
        // Authentication with an unknown subtype.
        auth(99, b""),
    ];
    for bytes in cases {
        let b = bytes.clone();
        let err = against(move |mut s| async move {
            read_startup(&mut s).await;
            s.write_all(&b).await.unwrap();
            let _ = s.read_u8().await;
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{bytes:?}: {err}");
    }
}

#[tokio::test]
async fn server_closing_mid_startup_is_an_error_not_a_hang() {
    let err = against(|mut s| async move {
        read_startup(&mut s).await;
        s.write_all(b"R\0\0\0").await.unwrap();
        drop(s);
    })
    .await
    .unwrap_err();
    assert!(err.is_closed(), "{err}");
}

/// The tests that flood the client (64 MiB of notices, endless messages) burn both cores of a
/// CI machine; run one at a time so their timing assertions measure the client, not the
/// contention between them.
static FLOODING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server floods output before reading our (large) request: a client that only writes
/// would deadlock with it once both socket buffers are full (N11 in tests/FAULTS.md).
#[tokio::test]
async fn large_request_while_the_server_floods_does_not_deadlock() {
    let _one_flood_at_a_time = FLOODING.lock().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_startup(&mut s).await;
        let mut hello = auth(0, b"");
        hello.extend(msg(b'Z', b"I"));
        s.write_all(&hello).await.unwrap();
        // Wait for the first byte of the query, then flood 64 MiB of notices without reading.
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.unwrap();
        let notice = msg(
            b'N',
            &[b"SNOTICE\0C00000\0M".as_slice(), &[b'x'; 1000], b"\0\0"].concat(),
        );
        let mut flood = Vec::new();
        while flood.len() < 64 << 20 {
            flood.extend_from_slice(&notice);
        }
        s.write_all(&flood).await.unwrap();
        // Now read the rest of the Query message and answer it.
        let len = s.read_i32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        let mut reply = msg(b'C', b"SELECT 0\0");
        reply.extend(msg(b'Z', b"I"));
        s.write_all(&reply).await.unwrap();
        let _ = s.read_u8().await;
    });
    let cfg: Config = format!("host=127.0.0.1 port={port} user=u dbname=d")
        .parse()
        .unwrap();
    let mut c = Connection::connect(&cfg).await.unwrap();
    let notices = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = notices.clone();
    c.set_notice_handler(Some(Box::new(move |_| {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })));
    let sql = format!("SELECT 0 /* {} */", "y".repeat(16 << 20));
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), c.simple_query(&sql))
        .await
        .expect("deadlocked: the client never read while writing")
        .unwrap();
    assert_eq!(r[0].command_tag(), Some("SELECT 0"));
    assert!(notices.load(std::sync::atomic::Ordering::Relaxed) > 60_000);
    server.abort();
}

// ---------------------------------------------------------------------------------------------
// A reusable scripted server: startup, then one scripted reply per request
// ---------------------------------------------------------------------------------------------

/// What a well-behaved server sends after the StartupMessage of a trust user: AuthenticationOk,
/// BackendKeyData (pid 4242, a 4-byte key), ReadyForQuery (idle).
fn hello() -> Vec<u8> {
    hello_with_key(&[1, 2, 3, 4])
}

fn hello_with_key(key: &[u8]) -> Vec<u8> {
    let mut v = auth(0, b"");
    v.extend(msg(b'K', &[&4242i32.to_be_bytes()[..], key].concat()));
    v.extend(msg(b'Z', b"I"));
    v
}

fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

/// A RowDescription of text columns with these names.
fn row_description(names: &[&str]) -> Vec<u8> {
    let mut b = (names.len() as i16).to_be_bytes().to_vec();
    for n in names {
        b.extend_from_slice(n.as_bytes());
        b.push(0);
        b.extend_from_slice(&0i32.to_be_bytes()); // table oid
        b.extend_from_slice(&0i16.to_be_bytes()); // column id
        b.extend_from_slice(&25i32.to_be_bytes()); // text
        b.extend_from_slice(&(-1i16).to_be_bytes()); // type size
        b.extend_from_slice(&(-1i32).to_be_bytes()); // type modifier
        b.extend_from_slice(&0i16.to_be_bytes()); // text format
    }
    msg(b'T', &b)
}

/// A DataRow of non-NULL values.
fn data_row(values: &[&[u8]]) -> Vec<u8> {
    let mut b = (values.len() as i16).to_be_bytes().to_vec();
    for v in values {
        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
        b.extend_from_slice(v);
    }
    msg(b'D', &b)
}

fn command_complete(tag: &str) -> Vec<u8> {
    msg(b'C', &[tag.as_bytes(), b"\0"].concat())
}

/// Reads frontend messages up to the end of one request: Query, Sync or Flush. `None` at EOF.
async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut tags = Vec::new();
    loop {
        let tag = s.read_u8().await.ok()?;
        let len = s.read_i32().await.ok()? as usize;
        let mut body = vec![0; len.checked_sub(4)?];
        s.read_exact(&mut body).await.ok()?;
        tags.push(tag);
        if matches!(tag, b'Q' | b'S' | b'H') {
            return Some(tags);
        }
    }
}

/// A fake server for one connection: reads the StartupMessage, writes `startup`, then answers
/// the i-th request (Query, or extended messages up to Sync/Flush) with `replies[i]`, and keeps
/// the socket open until the client closes it. Extra connections (a CancelRequest, say) are
/// accepted and left unanswered, like a server that never gets to them.
struct Script {
    cfg: Config,
    task: tokio::task::JoinHandle<()>,
}

impl Script {
    async fn start(startup: Vec<u8>, replies: Vec<Vec<u8>>) -> Script {
        Self::start_with(startup, replies, "").await
    }

    /// `extra` is appended to the DSN (`connect_timeout=...`, `require_auth=...`).
    async fn start_with(startup: Vec<u8>, replies: Vec<Vec<u8>>, extra: &str) -> Script {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _keep_open = tokio::spawn(async move {
                let mut parked = Vec::new();
                while let Ok((c, _)) = listener.accept().await {
                    parked.push(c);
                }
            });
            read_startup(&mut s).await;
            if s.write_all(&startup).await.is_err() {
                return;
            }
            for reply in replies {
                if read_request(&mut s).await.is_none() || s.write_all(&reply).await.is_err() {
                    return;
                }
            }
            let mut sink = [0u8; 1024];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let cfg = format!(
            "host=127.0.0.1 port={port} user=alice password=secret-pw dbname=db connect_timeout=5 {extra}"
        )
        .parse()
        .unwrap();
        Script { cfg, task }
    }

    async fn connect(&self) -> Result<Connection, Error> {
        Connection::connect(&self.cfg).await
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, runs `SELECT x` with the simple protocol against `reply`, and returns the error
/// and the connection (to check `is_broken`).
async fn simple_query_against(reply: Vec<u8>) -> (Error, Connection) {
    let fake = Script::start(hello(), vec![reply]).await;
    let mut c = fake.connect().await.unwrap();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        c.simple_query("SELECT x"),
    )
    .await
    .expect("a hostile reply must not hang the client")
    .unwrap_err();
    (err, c)
}

fn assert_protocol_and_broken(what: &str, err: &Error, c: &Connection) {
    assert!(matches!(err, Error::Protocol(_)), "{what}: {err:?}");
    assert!(
        c.is_broken(),
        "{what}: a protocol error must break the connection"
    );
}

#[tokio::test]
async fn script_helper_serves_a_valid_query() {
    let mut reply = row_description(&["a", "b"]);
    reply.extend(data_row(&[b"1", b"one"]));
    reply.extend(data_row(&[b"2", b"two"]));
    reply.extend(command_complete("SELECT 2"));
    reply.extend(ready());
    let fake = Script::start(hello(), vec![reply]).await;
    let mut c = fake.connect().await.unwrap();
    assert_eq!(c.backend_pid(), 4242);
    let r = c.simple_query("SELECT x").await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].rows().len(), 2);
    assert_eq!(r[0].rows()[1].raw(1).unwrap(), Some(&b"two"[..]));
    assert!(c.is_idle());
}

// M1: bad lengths mid-query, not only at startup.
#[tokio::test]
async fn m1_bad_lengths_in_a_query_response() {
    for (what, reply) in [
        (
            "ReadyForQuery claiming 0x7fffffff bytes",
            b"Z\x7f\xff\xff\xff".to_vec(),
        ),
        (
            "DataRow length below 4",
            [row_description(&["a"]), b"D\0\0\0\x03".to_vec()].concat(),
        ),
        ("negative length", b"C\xff\xff\xff\xf0".to_vec()),
    ] {
        let (err, c) = simple_query_against(reply).await;
        assert_protocol_and_broken(what, &err, &c);
    }
}

// M2: hostile DataRows after a valid RowDescription, in a real query response.
#[tokio::test]
async fn m2_hostile_data_rows_after_a_valid_row_description() {
    let huge_count = [&65535u16.to_be_bytes()[..], &[0u8; 8]].concat(); // a 10-byte body
    let minus_two = [&1i16.to_be_bytes()[..], &(-2i32).to_be_bytes()].concat();
    let too_long = [&1i16.to_be_bytes()[..], &100i32.to_be_bytes(), b"abc"].concat();
    let count_mismatch = [
        &2i16.to_be_bytes()[..],
        &1i32.to_be_bytes(),
        b"x",
        &1i32.to_be_bytes(),
        b"y",
    ]
    .concat();
    for (what, body) in [
        ("col_count 65535 with a 10-byte body", huge_count),
        ("field length -2", minus_two),
        ("field length larger than the rest", too_long),
        ("2 values for 1 column", count_mismatch),
    ] {
        let mut reply = row_description(&["a"]);
        reply.extend(msg(b'D', &body));
        reply.extend(command_complete("SELECT 1"));
        reply.extend(ready());
        let (err, c) = simple_query_against(reply).await;
        assert_protocol_and_broken(what, &err, &c);
    }
}

// M3: unterminated strings.
#[tokio::test]
async fn m3_unterminated_names_and_fields() {
    let unterminated_name = [&1i16.to_be_bytes()[..], b"name-without-nul"].concat();
    for (what, reply) in [
        (
            "RowDescription with an unterminated name",
            msg(b'T', &unterminated_name),
        ),
        (
            "ErrorResponse with a field missing its NUL",
            msg(b'E', b"SERROR\0C42000\0Mno nul"),
        ),
        (
            "ErrorResponse without the final NUL",
            msg(b'E', b"SERROR\0C42000\0Mmsg\0"),
        ),
        (
            "NoticeResponse with a field missing its NUL",
            msg(b'N', b"SNOTICE\0Mno nul"),
        ),
    ] {
        let (err, c) = simple_query_against(reply).await;
        assert_protocol_and_broken(what, &err, &c);
    }
}

// M4: state-machine violations.
#[tokio::test]
async fn m4_ready_for_query_with_an_unknown_status() {
    // At startup.
    let fake = Script::start([auth(0, b""), msg(b'Z', b"X")].concat(), vec![]).await;
    let err = fake.connect().await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("status"), "{err}");
    // After a query.
    let (err, c) =
        simple_query_against([command_complete("SELECT 0"), msg(b'Z', b"?")].concat()).await;
    assert_protocol_and_broken("ReadyForQuery status '?'", &err, &c);
}

#[tokio::test]
async fn m4_second_authentication_ok() {
    let fake = Script::start(
        [auth(0, b""), auth(0, b""), msg(b'Z', b"I")].concat(),
        vec![],
    )
    .await;
    let err = fake.connect().await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn m4_data_row_before_row_description() {
    let reply = [data_row(&[b"1"]), command_complete("SELECT 1"), ready()].concat();
    let (err, c) = simple_query_against(reply).await;
    assert_protocol_and_broken("DataRow before RowDescription", &err, &c);
}

#[tokio::test]
async fn m4_unsolicited_ready_for_query_after_the_answer() {
    // Two ReadyForQuery for one request: the second is caught at the next request at the
    // latest (or by the idle check), never taken as the next query's answer.
    let reply = [command_complete("SELECT 0"), ready(), ready()].concat();
    let fake = Script::start(
        hello(),
        vec![reply, [command_complete("SELECT 0"), ready()].concat()],
    )
    .await;
    let mut c = fake.connect().await.unwrap();
    c.simple_query("SELECT x").await.unwrap();
    // The extra message may still be on its way: poll the idle check until it sees it.
    let start = std::time::Instant::now();
    while c.check_idle_socket() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "an unsolicited ReadyForQuery on an idle connection went unnoticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(c.is_broken());

    // Without the idle check, the next query must not take the stray ReadyForQuery for its
    // answer: a simple query's answer always has a CommandComplete, EmptyQueryResponse or
    // ErrorResponse before its ReadyForQuery.
    let reply = [command_complete("SELECT 0"), ready(), ready()].concat();
    let second = [command_complete("SELECT 1"), ready()].concat();
    let fake = Script::start(hello(), vec![reply, second]).await;
    let mut c = fake.connect().await.unwrap();
    c.simple_query("SELECT x").await.unwrap();
    let err = c.simple_query("SELECT y").await.unwrap_err();
    assert_protocol_and_broken("a stray ReadyForQuery before the next answer", &err, &c);
}

/// The extended protocol through `execute_unprepared`: Parse/Describe/Flush is answered with
/// ParseComplete, ParameterDescription (no parameters), RowDescription; Bind/Execute/Sync with
/// `execute_reply`.
async fn extended_against(execute_reply: Vec<u8>) -> (Error, Connection) {
    let describe = [
        msg(b'1', b""),
        msg(b't', &0i16.to_be_bytes()),
        row_description(&["a"]),
    ]
    .concat();
    let fake = Script::start(hello(), vec![describe, execute_reply]).await;
    let mut c = fake.connect().await.unwrap();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        c.execute_unprepared("SELECT a", &[]),
    )
    .await
    .expect("must not hang")
    .unwrap_err();
    (err, c)
}

#[tokio::test]
async fn m4_extended_scripts_work_when_well_formed() {
    let describe = [
        msg(b'1', b""),
        msg(b't', &0i16.to_be_bytes()),
        row_description(&["a"]),
    ]
    .concat();
    let exec = [
        msg(b'2', b""),
        data_row(&[b"v"]),
        command_complete("SELECT 1"),
        ready(),
    ]
    .concat();
    let fake = Script::start(hello(), vec![describe, exec]).await;
    let mut c = fake.connect().await.unwrap();
    let r = c.execute_unprepared("SELECT a", &[]).await.unwrap();
    assert_eq!(r.rows()[0].raw(0).unwrap(), Some(&b"v"[..]));
    assert!(c.is_idle());
}

#[tokio::test]
async fn m4_bind_complete_out_of_order() {
    let cases = [
        (
            "DataRow before BindComplete",
            [
                data_row(&[b"v"]),
                msg(b'2', b""),
                command_complete("SELECT 1"),
                ready(),
            ]
            .concat(),
        ),
        (
            "BindComplete after CommandComplete",
            [command_complete("SELECT 0"), msg(b'2', b""), ready()].concat(),
        ),
        (
            "two BindCompletes",
            [
                msg(b'2', b""),
                msg(b'2', b""),
                command_complete("SELECT 0"),
                ready(),
            ]
            .concat(),
        ),
        (
            "ParseComplete in an Execute response",
            [
                msg(b'2', b""),
                msg(b'1', b""),
                command_complete("SELECT 0"),
                ready(),
            ]
            .concat(),
        ),
    ];
    for (what, reply) in cases {
        let (err, c) = extended_against(reply).await;
        assert_protocol_and_broken(what, &err, &c);
    }
}

// M5: the unknown methods the existing test does not name.
#[tokio::test]
async fn m5_scm_and_unsolicited_gss_continue_are_named() {
    for (kind, name) in [(6, "SCM"), (8, "GSS")] {
        let fake = Script::start(auth(kind, b""), vec![]).await;
        let err = fake.connect().await.unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{kind}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

// M6: hostile server-first-messages, refused before any PBKDF2.
#[tokio::test]
async fn m6_hostile_server_first_messages() {
    let salt = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef");
    // `NONCE` is replaced by the client's nonce.
    let cases = [
        ("missing r", format!("s={salt},i=4096")),
        ("missing s", "r=NONCESRV,i=4096".to_owned()),
        ("missing i", format!("r=NONCESRV,s={salt}")),
        (
            "nonce not prefixed by ours",
            format!("r=someoneelseNONCE,s={salt},i=4096"),
        ),
        (
            "nonce without a server part",
            format!("r=NONCE,s={salt},i=4096"),
        ),
        (
            "salt not base64",
            "r=NONCESRV,s=***not-base64***,i=4096".to_owned(),
        ),
        ("i=0", format!("r=NONCESRV,s={salt},i=0")),
        (
            "i=99999999999",
            format!("r=NONCESRV,s={salt},i=99999999999"),
        ),
        ("i=-1", format!("r=NONCESRV,s={salt},i=-1")),
        ("i not a number", format!("r=NONCESRV,s={salt},i=lots")),
        (
            "a mandatory extension",
            format!("m=ext,r=NONCESRV,s={salt},i=4096"),
        ),
    ];
    for (what, template) in cases {
        let t = std::time::Instant::now();
        let err = against(move |mut s| async move {
            read_startup(&mut s).await;
            s.write_all(&auth(10, b"SCRAM-SHA-256\0\0")).await.unwrap();
            let (_, body) = read_msg(&mut s).await;
            let text = String::from_utf8_lossy(&body).into_owned();
            let nonce = text.split("r=").nth(1).unwrap().to_owned();
            let first = template.replace("NONCE", &nonce);
            s.write_all(&auth(11, first.as_bytes())).await.unwrap();
            let _ = s.read_u8().await;
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{what}: {err:?}");
        assert!(!format!("{err:?}").contains("secret-pw"), "{what}");
        // A debug build needs seconds for a million PBKDF2 rounds: refused before any.
        assert!(
            t.elapsed() < std::time::Duration::from_millis(500),
            "{what}: {:?}",
            t.elapsed()
        );
    }
}

// M7: the server-final variants the existing tests do not cover.
#[tokio::test]
async fn m7_server_final_error_or_missing_signature() {
    for (what, fin) in [
        ("e=other-error", b"e=other-error".to_vec()),
        ("e=invalid-proof", b"e=invalid-proof".to_vec()),
        ("no v=", b"x=1".to_vec()),
        ("empty", Vec::new()),
    ] {
        let err = against(move |s| async move {
            let mut s = scram_until_final(s).await;
            s.write_all(&auth(12, &fin)).await.unwrap();
            s.write_all(&auth(0, b"")).await.unwrap();
            let _ = s.read_u8().await;
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{what}: {err:?}");
    }
}

// M9: a downgrade is refused before the password leaves.
#[tokio::test]
async fn m9_downgrade_refused_before_the_password_is_sent() {
    for (kind, data) in [(3, &b""[..]), (5, &b"salt"[..])] {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_startup(&mut s).await;
            s.write_all(&auth(kind, data)).await.unwrap();
            let mut after = Vec::new();
            let _ = s.read_to_end(&mut after).await;
            let _ = tx.send(after);
        });
        let cfg: Config = format!(
            "host=127.0.0.1 port={port} user=alice password=secret-pw dbname=db require_auth=scram-sha-256"
        )
        .parse()
        .unwrap();
        let err = Connection::connect(&cfg).await.unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{kind}: {err:?}");
        let after = rx.await.unwrap();
        assert!(
            after.is_empty(),
            "{kind}: the client sent {after:?} after the request"
        );
        server.abort();
    }
    // Trust (AuthenticationOk at once) when SCRAM is required.
    let fake = Script::start_with(hello(), vec![], "require_auth=scram-sha-256").await;
    let err = fake.connect().await.unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
}

// M10 (SSLRequest answers) does not apply: the client has no TLS and never sends an SSLRequest.

// M11: BackendKeyData with other key lengths.
#[tokio::test]
async fn m11_cancel_keys_of_4_to_256_bytes_are_kept_and_sent_back() {
    for len in [4usize, 32, 256] {
        let key: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hello = hello_with_key(&key);
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_startup(&mut s).await;
            s.write_all(&hello).await.unwrap();
            // The CancelRequest arrives on a second connection.
            let (mut cancel, _) = listener.accept().await.unwrap();
            let body = read_startup(&mut cancel).await;
            drop(cancel);
            let _keep = s;
            body
        });
        let cfg: Config = format!("host=127.0.0.1 port={port} user=alice dbname=db")
            .parse()
            .unwrap();
        let c = Connection::connect(&cfg).await.unwrap();
        c.cancel_token().cancel_query().await.unwrap();
        let body = server.await.unwrap();
        let want = [&80877102i32.to_be_bytes()[..], &4242i32.to_be_bytes(), &key].concat();
        assert_eq!(body, want, "key length {len}");
    }
}

#[tokio::test]
async fn m11_cancel_keys_outside_4_to_256_bytes_are_refused() {
    for len in [3usize, 257, 0] {
        let fake = Script::start(hello_with_key(&vec![9u8; len]), vec![]).await;
        let err = fake.connect().await.unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{len}: {err:?}");
        assert!(err.to_string().contains("cancel key"), "{len}: {err}");
    }
}

// M12: NegotiateProtocolVersion.
#[tokio::test]
async fn m12_negotiate_protocol_version() {
    // Minor 0 (what we asked for) with an option list: parsed, and the startup goes on.
    let mut body = 0i32.to_be_bytes().to_vec();
    body.extend(1i32.to_be_bytes());
    body.extend(b"_pq_.unknown\0");
    let fake = Script::start([msg(b'v', &body), hello()].concat(), vec![]).await;
    let c = fake.connect().await.unwrap();
    assert!(c.is_idle());
    // A malformed one (a count larger than the body) is a protocol error.
    let mut bad = 0i32.to_be_bytes().to_vec();
    bad.extend(1000i32.to_be_bytes());
    let fake = Script::start([msg(b'v', &bad), hello()].concat(), vec![]).await;
    let err = fake.connect().await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

// M13: endless asynchronous messages without ReadyForQuery.
/// Accepts one connection, serves `startup`, then after the first request (if `after_request`)
/// writes `unit` for ever.
async fn flooder(
    startup: Vec<u8>,
    unit: Vec<u8>,
    after_request: bool,
    extra: &str,
) -> (Config, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _park = tokio::spawn(async move {
            let mut parked = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                parked.push(c);
            }
        });
        read_startup(&mut s).await;
        s.write_all(&startup).await.unwrap();
        if after_request {
            read_request(&mut s).await;
        }
        let chunk: Vec<u8> = unit.iter().copied().cycle().take(unit.len() * 64).collect();
        while s.write_all(&chunk).await.is_ok() {}
    });
    let cfg = format!("host=127.0.0.1 port={port} user=alice dbname=db {extra}")
        .parse()
        .unwrap();
    (cfg, task)
}

// The flooding server gets its own worker thread, so it cannot delay the client's timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m13_endless_parameter_status_at_startup_ends_at_connect_timeout() {
    let _one_flood_at_a_time = FLOODING.lock().await;
    let (cfg, task) = flooder(
        auth(0, b""),
        msg(b'S', b"a\0b\0"),
        false,
        "connect_timeout=2",
    )
    .await;
    let t = std::time::Instant::now();
    let err = tokio::time::timeout(std::time::Duration::from_secs(4), Connection::connect(&cfg))
        .await
        .expect("bounded by connect_timeout")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(
        t.elapsed() < std::time::Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    task.abort();
}

// The flooding server gets its own worker thread, so it cannot delay the client's timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m13_endless_notices_during_a_query_end_at_the_query_timeout() {
    let _one_flood_at_a_time = FLOODING.lock().await;
    let notice = msg(b'N', b"SNOTICE\0C00000\0Mmore\0\0");
    let (cfg, task) = flooder(hello(), notice, true, "").await;
    let mut c = Connection::connect(&cfg).await.unwrap();
    let limit = std::time::Duration::from_millis(300);
    c.set_query_timeout(Some(limit));
    let t = std::time::Instant::now();
    let err = tokio::time::timeout(limit * 4, c.simple_query("SELECT 1"))
        .await
        .expect("bounded by the query timeout")
        .unwrap_err();
    assert!(matches!(err, Error::QueryTimeout(_)), "{err:?}");
    // The cancellation is never answered and no ReadyForQuery comes: closed, not reused.
    assert!(c.is_broken());
    assert!(
        t.elapsed() < limit * 2 + std::time::Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    task.abort();
}

// The flooding server gets its own worker thread, so it cannot delay the client's timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m13_endless_notifications_keep_a_bounded_queue() {
    let _one_flood_at_a_time = FLOODING.lock().await;
    let mut body = 7i32.to_be_bytes().to_vec();
    body.extend(b"chan\0payload\0");
    let (cfg, task) = flooder(hello(), msg(b'A', &body), true, "").await;
    let mut c = Connection::connect(&cfg).await.unwrap();
    c.set_query_timeout(Some(std::time::Duration::from_millis(300)));
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        c.simple_query("SELECT 1"),
    )
    .await
    .expect("bounded by the query timeout")
    .unwrap_err();
    assert!(matches!(err, Error::QueryTimeout(_)), "{err:?}");
    let queued = c.take_notifications();
    assert_eq!(queued.len(), 10_000, "the queue is capped");
    assert_eq!(queued[0].channel, "chan");
    task.abort();
}

/// A multiplexed response out of step (a DataRow after CommandComplete) is a protocol error for
/// its caller and closes the shared connection, which leaves the pool.
#[tokio::test]
async fn multiplexed_response_out_of_step_is_a_protocol_error() {
    let describe = [
        msg(b'1', b""),
        msg(b't', &0i16.to_be_bytes()),
        row_description(&["a"]),
        ready(),
    ]
    .concat();
    let good = [
        msg(b'2', b""),
        data_row(&[b"v"]),
        command_complete("SELECT 1"),
        ready(),
    ]
    .concat();
    let bad = [
        msg(b'2', b""),
        command_complete("SELECT 0"),
        data_row(&[b"v"]),
        ready(),
    ]
    .concat();
    let fake = Script::start(hello(), vec![describe, good, bad]).await;
    let pool = pool_core::PsqlPool::builder()
        .config(fake.cfg.clone())
        .max_db_pool_size(2)
        .wait_timeout(std::time::Duration::from_millis(200))
        .multiplexing(true)
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    pool.execute("SELECT a", &[]).await.unwrap();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        pool.execute("SELECT a", &[]),
    )
    .await
    .expect("must not hang")
    .expect_err("out of step");
    assert!(
        matches!(&err, pool_core::Error::Backend(Error::Protocol(m)) if m.contains("DataRow")),
        "{err:?}"
    );
    assert_eq!(pool.multiplexed_connections(), 0);
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.queued), (0, 0, 0), "{s:?}");
}

/// Issue 17: a ReadyForQuery that reports an open transaction on a multiplexed connection (a
/// real server sends it only if a statement opened one, which a statement proven safe cannot)
/// quarantines the connection: the caller gets a protocol error saying so, never a result, and
/// the connection is closed and leaves the pool.
#[tokio::test]
async fn multiplexed_connection_left_in_a_transaction_is_quarantined() {
    let describe = [
        msg(b'1', b""),
        msg(b't', &0i16.to_be_bytes()),
        row_description(&["a"]),
        ready(),
    ]
    .concat();
    let row = |status: &[u8]| {
        [
            msg(b'2', b""),
            data_row(&[b"v"]),
            command_complete("SELECT 1"),
            msg(b'Z', status),
        ]
        .concat()
    };
    // The solo run (prepare, then execute) proves `SELECT a` safe; the next one is multiplexed
    // and its ReadyForQuery says "in a transaction".
    let fake = Script::start(hello(), vec![describe, row(b"I"), row(b"T")]).await;
    let pool = pool_core::PsqlPool::builder()
        .config(fake.cfg.clone())
        .max_db_pool_size(2)
        .wait_timeout(std::time::Duration::from_millis(200))
        .multiplexing(true)
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    let solo = pool.execute("SELECT a", &[]).await.unwrap();
    assert_eq!(solo.rows()[0].raw(0).unwrap(), Some(&b"v"[..]));
    assert_eq!(pool.multiplexed_connections(), 0);
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        pool.execute("SELECT a", &[]),
    )
    .await
    .expect("must not hang")
    .expect_err("a transaction on a shared connection is an error");
    match &err {
        pool_core::Error::Backend(Error::Protocol(m)) => {
            assert!(m.contains("transaction"), "{m}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(pool.multiplexed_connections(), 0, "the connection left");
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.queued), (0, 0, 0), "{s:?}");
}
