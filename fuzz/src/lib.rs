//! The bodies of the cargo-fuzz targets, one `pub fn` per target.
//!
//! One copy serves two builds. The fuzz targets (`fuzz/fuzz_targets/*.rs`) call these
//! functions through this crate; the stable replay test (`tests/tests/fuzz_corpus.rs`)
//! compiles this very file as a module with `#[path]`, so CI runs every corpus input through
//! the same code without nightly or libFuzzer. Hence: no crate-level attributes here, and no
//! dependency that `tests/Cargo.toml` does not also have (pgwire-lite, base64, bytes, hmac,
//! sha2).
//!
//! Each body panics only when pgwire-lite breaks one of its promises: a panic inside the
//! library, an error of the wrong kind, a checked structure that does not match its checks,
//! a secret in `Debug` or an error message, or a SCRAM exchange accepted without proof.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;
use hmac::{Hmac, Mac};
use pgwire_lite::ConfigError;
use pgwire_lite::auth::scram::{MAX_ITERATIONS, ScramSha256};
use pgwire_lite::protocol::backend::{self, BackendMessage, HEADER_LEN};
use pgwire_lite::types::{
    self, Array, Date, Interval, Json, Numeric, Time, Timestamp, TimestampTz, Uuid,
};
use pgwire_lite::{Config, Error};
use pgwire_lite::{Format, FromSql, IsNull, ToSql, Type, Value};
use sha2::Sha256;

// ---------------------------------------------------------------------------------------------
// backend_frames

/// A small global cap, as a memory-conscious caller would configure.
const SMALL_CAP: usize = 1 << 20;

/// Feeds `data` through the framing loop of a connection's read buffer: `check_frame`, then
/// `decode` of each complete frame, then every lazy accessor of the decoded message.
///
/// Runs under three caps: the default (1 GiB), 1 MiB, and the startup cap on Authentication
/// messages. A `check_frame` error ends the loop, as it breaks the connection. A `decode`
/// error does not: the frame boundary is still known, so going on explores more messages per
/// input (the connection itself would stop there).
pub fn backend_frames(data: &[u8]) {
    for cap in [
        backend::DEFAULT_MAX_MESSAGE_LEN,
        SMALL_CAP,
        backend::MAX_AUTH_MESSAGE_LEN,
    ] {
        frames_with_cap(data, cap);
    }
}

fn frames_with_cap(data: &[u8], cap: usize) {
    let mut buf = data;
    loop {
        let n = match backend::check_frame(buf, cap) {
            Ok(Some(n)) => n,
            // More bytes needed: the connection would read again.
            Ok(None) => {
                assert!(buf.len() < HEADER_LEN || frame_len(buf).is_some_and(|n| n > buf.len()));
                return;
            }
            Err(e) => {
                assert_protocol(&e);
                return;
            }
        };
        assert!(
            n >= HEADER_LEN && n <= buf.len() && n - 1 <= cap,
            "check_frame returned {n} for a {}-byte buffer, cap {cap}",
            buf.len()
        );
        assert_eq!(
            frame_len(buf),
            Some(n),
            "check_frame disagrees with the header"
        );
        // A frame is never reported before its last byte is buffered.
        assert!(
            matches!(backend::check_frame(&buf[..n - 1], cap), Ok(None)),
            "check_frame accepted a frame missing its last byte"
        );
        let (frame, rest) = buf.split_at(n);
        match backend::decode(frame) {
            Ok(msg) => exercise(&msg, &frame[HEADER_LEN..]),
            Err(e) => assert_protocol(&e),
        }
        buf = rest;
    }
}

/// The frame length (header included) that the header at the start of `buf` declares.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let len = buf.get(1..HEADER_LEN)?;
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    usize::try_from(len).ok().map(|l| l + 1)
}

/// Every malformed input must be `Error::Protocol` (DESIGN.md, invariant 1).
fn assert_protocol(e: &Error) {
    assert!(
        matches!(e, Error::Protocol(_)),
        "expected Error::Protocol, got {e:?}"
    );
    let _ = e.to_string();
}

/// Reads everything a decoded message offers, checking the iterators against their `len()`.
fn exercise(msg: &BackendMessage<'_>, body: &[u8]) {
    let _ = format!("{msg:?}");
    match msg {
        BackendMessage::DataRow(row) => {
            let mut seen = 0;
            for value in row.ranges() {
                if let Some(range) = value {
                    assert!(
                        body.get(range.clone()).is_some(),
                        "DataRow range {range:?} outside its {}-byte body",
                        body.len()
                    );
                }
                seen += 1;
            }
            assert_eq!(seen, row.len(), "DataRow ranges() disagrees with len()");
            assert_eq!(row.is_empty(), seen == 0);
        }
        BackendMessage::RowDescription(desc) => {
            let mut seen = 0;
            for field in desc.fields() {
                let _ = format!("{field:?}");
                seen += 1;
            }
            assert_eq!(
                seen,
                desc.len(),
                "RowDescription fields() disagrees with len()"
            );
            assert_eq!(desc.is_empty(), seen == 0);
        }
        BackendMessage::ParameterDescription(params) => {
            let oids: Vec<u32> = params.oids().collect();
            assert_eq!(oids.len(), params.len(), "oids() disagrees with len()");
            assert_eq!(params.is_empty(), oids.is_empty());
        }
        BackendMessage::ErrorResponse(fields) | BackendMessage::NoticeResponse(fields) => {
            for (code, value) in fields.iter() {
                assert_ne!(code, 0, "the terminator was returned as a field");
                assert!(!value.contains(&0), "a field value holds its NUL");
            }
            let db = fields.to_db_error();
            let _ = (format!("{db}"), format!("{db:?}"), db.code());
            let err = Error::from(db);
            let _ = (err.to_string(), err.code().map(str::len));
        }
        BackendMessage::CommandComplete { tag } => {
            let _ = backend::rows_affected(tag);
        }
        BackendMessage::ReadyForQuery { status } => {
            assert!(matches!(status, b'I' | b'T' | b'E'), "status {status:#04x}");
        }
        BackendMessage::BackendKeyData { secret_key, .. } => {
            assert!((4..=backend::MAX_CANCEL_KEY_LEN).contains(&secret_key.len()));
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// config_parse

/// The password the secret checks look for. Seeds spell it `password=SECRETXYZ`.
pub const SECRET_MARKER: &str = "SECRETXYZ";

/// Parses `data` (when UTF-8) as a DSN, then resolves it against a fake environment.
///
/// Input: `DSN` optionally followed by `\x01NAME=VALUE` items forming the environment that
/// `Config::resolve_with` sees (so no real variable leaks in and runs are reproducible).
///
/// Secret checks, asserted only where the marker was really taken as the password:
/// - a parsed or resolved config with a password formats identically whatever the password;
/// - when the parsed password holds the marker (and no other field does), making the parse
///   fail after it (a bad port, sslmode or key appended) gives errors without the marker;
/// - a resolve that fails after the password was set (from the DSN or `PGPASSWORD`) gives an
///   error without the marker, unless a non-password input holds it.
pub fn config_parse(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = input.split('\x01');
    let dsn = parts.next().unwrap_or_default();
    let env: Vec<(&str, &str)> = parts.filter_map(|kv| kv.split_once('=')).collect();

    let cfg = match dsn.parse::<Config>() {
        Ok(cfg) => cfg,
        Err(e) => {
            let _ = (e.to_string(), format!("{e:?}"));
            return;
        }
    };
    check_debug_redacted(&cfg);
    let _ = cfg
        .targets()
        .iter()
        .map(|(h, p)| format!("{h}:{p}"))
        .count();

    let password_has_marker = cfg.get_password().is_some_and(contains_marker);
    let marker_elsewhere = format!("{:?}", with_other_password(&cfg)).contains(SECRET_MARKER);
    if password_has_marker && !marker_elsewhere {
        for tail in failing_tails(dsn) {
            let longer = format!("{}{tail}", dsn.trim_end());
            if let Err(e) = longer.parse::<Config>() {
                assert_no_marker(&e, &longer);
            }
        }
    }

    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    match cfg.resolve_with(&lookup) {
        Ok(resolved) => {
            check_debug_redacted(&resolved);
            let _ = resolved.targets().len();
        }
        Err(e) => {
            let env_password_has_marker = cfg.get_password().is_none()
                && lookup("PGPASSWORD").is_some_and(|p| contains_marker(p.as_bytes()));
            let env_elsewhere = env.iter().any(|(k, v)| {
                *k != "PGPASSWORD" && (k.contains(SECRET_MARKER) || v.contains(SECRET_MARKER))
            });
            if (password_has_marker || env_password_has_marker)
                && !marker_elsewhere
                && !env_elsewhere
            {
                assert_no_marker(&e, input);
            }
        }
    }
}

fn contains_marker(bytes: &[u8]) -> bool {
    bytes
        .windows(SECRET_MARKER.len())
        .any(|w| w == SECRET_MARKER.as_bytes())
}

fn with_other_password(cfg: &Config) -> Config {
    let mut other = cfg.clone();
    other.password("0");
    other
}

/// `Debug` must not depend on the password's value.
fn check_debug_redacted(cfg: &Config) {
    if cfg.get_password().is_some() {
        assert_eq!(
            format!("{cfg:?}"),
            format!("{:?}", with_other_password(cfg)),
            "Debug output depends on the password"
        );
    }
}

fn assert_no_marker(e: &ConfigError, input: &str) {
    for text in [e.to_string(), format!("{e:?}"), e.message().to_owned()] {
        assert!(
            !text.contains(SECRET_MARKER),
            "the password leaked into an error: {text:?} (input {input:?})"
        );
    }
}

/// Suffixes that make an otherwise valid DSN fail after its password was read.
fn failing_tails(dsn: &str) -> Vec<String> {
    let trimmed = dsn.trim();
    if trimmed.starts_with("postgresql://") || trimmed.starts_with("postgres://") {
        let sep = if trimmed.contains('?') { '&' } else { '?' };
        ["port=notaport", "sslmode=bogus", "nosuchkey=1"]
            .iter()
            .map(|kv| format!("{sep}{kv}"))
            .collect()
    } else {
        [" port=notaport", " sslmode=bogus", " nosuchkey=1"]
            .iter()
            .map(|kv| (*kv).to_owned())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// scram

/// The password of the fuzzed exchange.
pub const SCRAM_PASSWORD: &[u8] = b"pw";
/// The fixed client nonce of the fuzzed exchange; server nonces must extend it.
pub const SCRAM_NONCE: &str = "fixednonce";
/// Iteration counts above this (and within the library's cap) are skipped: they only cost
/// time, PBKDF2 is not what is being fuzzed. Counts over the cap are kept: refusing them is.
const FUZZ_MAX_ITERATIONS: u64 = 4096;

/// Runs one SCRAM exchange against server messages taken from `data`.
///
/// Input: a big-endian u16 `n`, then `n` bytes of server-first-message (fewer if the input
/// ends), then the rest as the server-final-message.
///
/// `finish` may succeed only when `update` did and the `v=` signature is the one an
/// independent computation (below, from RFC 5802) expects for the password and transcript.
pub fn scram(data: &[u8]) {
    let (server_first, server_final) = split_scram_input(data);
    if iteration_count(server_first)
        .is_some_and(|i| i > FUZZ_MAX_ITERATIONS && i <= u64::from(MAX_ITERATIONS))
    {
        return;
    }

    let mut exchange = ScramSha256::with_nonce(SCRAM_PASSWORD, SCRAM_NONCE);
    assert_eq!(exchange.client_first(), b"n,,n=,r=fixednonce");
    let client_final = exchange.update(server_first);
    match &client_final {
        Ok(msg) => assert!(msg.starts_with(b"c=biws,r=fixednonce")),
        Err(e) => assert!(matches!(e, Error::Auth(_)), "update: {e:?}"),
    }
    let finished = exchange.finish(server_final);
    assert_eq!(exchange.is_verified(), finished.is_ok());
    match finished {
        Ok(()) => {
            assert!(
                client_final.is_ok(),
                "finish succeeded after a failed update"
            );
            let expected = expected_server_signature(server_first);
            let got = std::str::from_utf8(server_final)
                .ok()
                .and_then(|m| m.split(',').next())
                .and_then(|v| v.strip_prefix("v="))
                .and_then(|v| BASE64.decode(v).ok());
            assert!(
                expected.is_some() && got.as_deref() == expected.as_ref().map(|s| &s[..]),
                "finish accepted a server signature that does not prove the password: {:?}",
                String::from_utf8_lossy(server_final)
            );
        }
        Err(e) => assert!(matches!(e, Error::Auth(_)), "finish: {e:?}"),
    }
    let _ = format!("{exchange:?}");
    assert!(
        exchange.finish(server_final).is_err(),
        "a second finish succeeded"
    );
    assert!(!exchange.is_verified());
}

fn split_scram_input(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (data, &[]);
    };
    rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()))
}

/// The `i=` value, parsed leniently (a superset of what the library accepts).
fn iteration_count(server_first: &[u8]) -> Option<u64> {
    std::str::from_utf8(server_first)
        .ok()?
        .split(',')
        .find_map(|p| p.strip_prefix("i="))?
        .parse()
        .ok()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// ServerSignature for [`SCRAM_PASSWORD`] and [`SCRAM_NONCE`] given a server-first-message,
/// or `None` when the message lacks its nonce, salt or count. RFC 5802 §3, written out again
/// so the check does not trust the code under test.
fn expected_server_signature(server_first: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(server_first).ok()?;
    let mut parts = text.split(',');
    let nonce = parts.next()?.strip_prefix("r=")?;
    let salt = BASE64.decode(parts.next()?.strip_prefix("s=")?).ok()?;
    let iterations: u32 = parts.next()?.strip_prefix("i=")?.parse().ok()?;

    // Hi(): PBKDF2-HMAC-SHA-256, one block. "pw" is unchanged by SASLprep.
    let mut block = salt;
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(SCRAM_PASSWORD, &block);
    let mut salted = u;
    for _ in 1..iterations {
        u = hmac(SCRAM_PASSWORD, &u);
        for (s, x) in salted.iter_mut().zip(u) {
            *s ^= x;
        }
    }
    let server_key = hmac(&salted, b"Server Key");
    let auth_message = format!("n=,r={SCRAM_NONCE},{text},c=biws,r={nonce}");
    Some(hmac(&server_key, auth_message.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// from_sql

/// The built-in types a `from_sql` input can pick with its first byte (modulo one more than
/// the length: the extra value stands for [`UNKNOWN_TYPE`]). `make_seeds.py` mirrors this
/// order; append only.
pub const FROM_SQL_TYPES: &[Type] = &[
    Type::BOOL,
    Type::BYTEA,
    Type::CHAR,
    Type::NAME,
    Type::INT8,
    Type::INT2,
    Type::INT4,
    Type::TEXT,
    Type::OID,
    Type::JSON,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::UNKNOWN,
    Type::BOOL_ARRAY,
    Type::BYTEA_ARRAY,
    Type::CHAR_ARRAY,
    Type::NAME_ARRAY,
    Type::INT2_ARRAY,
    Type::INT4_ARRAY,
    Type::TEXT_ARRAY,
    Type::OID_ARRAY,
    Type::BPCHAR_ARRAY,
    Type::VARCHAR_ARRAY,
    Type::INT8_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::BPCHAR,
    Type::VARCHAR,
    Type::DATE,
    Type::TIME,
    Type::TIMESTAMP,
    Type::TIMESTAMP_ARRAY,
    Type::DATE_ARRAY,
    Type::TIME_ARRAY,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ_ARRAY,
    Type::INTERVAL,
    Type::INTERVAL_ARRAY,
    Type::NUMERIC_ARRAY,
    Type::NUMERIC,
    Type::VOID,
    Type::UUID,
    Type::UUID_ARRAY,
    Type::JSONB,
    Type::JSONB_ARRAY,
    Type::JSON_ARRAY,
];

/// A type pgwire-lite has no codec for (`point`).
pub const UNKNOWN_TYPE: Type = Type::from_oid(600);

/// The type a `from_sql` input's first byte selects.
pub fn from_sql_type(selector: u8) -> Type {
    FROM_SQL_TYPES
        .get(usize::from(selector) % (FROM_SQL_TYPES.len() + 1))
        .cloned()
        .unwrap_or(UNKNOWN_TYPE)
}

/// Decodes a column value, as `Row::get` does: the first byte picks the column type, the rest
/// is the raw value, read in both formats into [`Value`] and into each concrete Rust type
/// whose `accepts` takes that column type.
///
/// Oracles: a [`Value`] decoded from binary re-encodes (`ToSql`) into bytes that decode and
/// re-encode to the same bytes; a [`Numeric`] read from text prints as text that reads back
/// equal.
pub fn from_sql(data: &[u8]) {
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let ty = from_sql_type(selector);

    value_round_trip(&ty, raw);
    if let Ok(v) = Value::from_sql_text(&ty, raw) {
        let _ = format!("{v:?}");
    }
    if let Ok(n) = <Numeric as FromSql>::from_sql_text(&ty, raw) {
        let printed = n.to_string();
        let again = <Numeric as FromSql>::from_sql_text(&ty, printed.as_bytes());
        assert!(
            again.as_ref().ok() == Some(&n),
            "numeric {printed:?} (from {:?}) reads back as {again:?}",
            String::from_utf8_lossy(raw)
        );
    }

    decode_as::<bool>(&ty, raw);
    decode_as::<i8>(&ty, raw);
    decode_as::<i16>(&ty, raw);
    decode_as::<i32>(&ty, raw);
    decode_as::<i64>(&ty, raw);
    decode_as::<u32>(&ty, raw);
    decode_as::<f32>(&ty, raw);
    decode_as::<f64>(&ty, raw);
    decode_as::<&str>(&ty, raw);
    decode_as::<String>(&ty, raw);
    decode_as::<&[u8]>(&ty, raw);
    decode_as::<Vec<u8>>(&ty, raw);
    decode_as::<Numeric>(&ty, raw);
    decode_as::<Date>(&ty, raw);
    decode_as::<Time>(&ty, raw);
    decode_as::<Timestamp>(&ty, raw);
    decode_as::<TimestampTz>(&ty, raw);
    decode_as::<std::time::SystemTime>(&ty, raw);
    decode_as::<Interval>(&ty, raw);
    decode_as::<Uuid>(&ty, raw);
    decode_as::<[u8; 16]>(&ty, raw);
    decode_as::<Json>(&ty, raw);
    decode_as::<Option<i64>>(&ty, raw);
    decode_as::<Option<Vec<Option<i32>>>>(&ty, raw);
    decode_as::<Vec<Option<String>>>(&ty, raw);
    decode_as::<Vec<String>>(&ty, raw);
    decode_as::<Vec<f64>>(&ty, raw);
    decode_as::<Vec<Vec<u8>>>(&ty, raw);
    decode_as::<Vec<Option<Numeric>>>(&ty, raw);
    decode_as::<Vec<TimestampTz>>(&ty, raw);
    decode_as::<Array<Option<i64>>>(&ty, raw);
    decode_as::<Array<Option<String>>>(&ty, raw);
    decode_as::<Array<Value>>(&ty, raw);
}

/// Decodes `raw` as `T` in both formats when `T` accepts `ty`, and a NULL always.
fn decode_as<'a, T: FromSql<'a> + std::fmt::Debug>(ty: &Type, raw: &'a [u8]) {
    if !T::accepts(ty) {
        return;
    }
    for format in [Format::Binary, Format::Text] {
        match types::decode::<T>(ty, format, Some(raw)) {
            Ok(v) => drop(format!("{v:?}")),
            Err(e) => drop(e.to_string()),
        }
    }
    let _ = types::decode::<T>(ty, Format::Binary, None).map(|v| format!("{v:?}"));
}

/// Binary decode, encode, decode, encode: the two encodings must be equal. (The first need
/// not equal `raw`, which may be non-canonical.)
fn value_round_trip(ty: &Type, raw: &[u8]) {
    let Ok(v) = Value::from_sql(ty, raw) else {
        return;
    };
    let _ = format!("{v:?}");
    let Some(first) = encode(&v, ty) else {
        return;
    };
    let again = Value::from_sql(ty, &first)
        .unwrap_or_else(|e| panic!("{ty}: our encoding {first:?} of {v:?} does not decode: {e}"));
    let second = encode(&again, ty);
    assert_eq!(
        second.as_ref(),
        Some(&first),
        "{ty}: {v:?} re-encodes differently after a round trip ({again:?})"
    );
}

fn encode(v: &Value, ty: &Type) -> Option<BytesMut> {
    if !v.accepts(ty) {
        return None;
    }
    let mut out = BytesMut::new();
    match v.to_sql(ty, &mut out) {
        Ok(IsNull::No) => Some(out),
        Ok(IsNull::Yes) | Err(_) => None,
    }
}
