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
    let len = s.read_i32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.unwrap();
    body
}

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
