//! Replays every committed fuzz input on the stable toolchain, so CI covers the fuzz corpora
//! and the crash inputs without nightly or libFuzzer.
//!
//! The bodies are not copied: `fuzz/src/lib.rs` (the fuzz crate's library, which the
//! cargo-fuzz targets call) is compiled here as a module. Inputs come from
//! `fuzz/corpus/<target>/` (seeds and what fuzzing kept) and
//! `fuzz/artifacts-regressions/<target>/` (inputs that once crashed a
//! target, replayed so that each stays a clean result).

#[path = "../../fuzz/src/lib.rs"]
mod bodies;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `body` on every corpus and regression input of `target`; fails naming every input
/// that panicked. The corpus must not be empty, or the test would prove nothing.
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing: run fuzz/make_seeds.py"
    );
    let files = corpus
        .into_iter()
        .chain(inputs("artifacts-regressions", target));
    let mut failed = Vec::new();
    let mut count = 0;
    for file in files {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        count += 1;
        if panic::catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {count} inputs panicked:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn backend_frames_corpus() {
    replay("backend_frames", bodies::backend_frames);
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", bodies::config_parse);
}

#[test]
fn scram_corpus() {
    replay("scram", bodies::scram);
}

// The seeds must reach deep into their target: a seed refused at its first byte would leave
// the fuzzer starting from nothing. These pin what fuzz/make_seeds.py is meant to produce.

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
        .join(format!("seed-{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn backend_seeds_decode_cleanly() {
    use pgwire_lite::protocol::backend::{self, BackendMessage};
    for (name, frames) in [
        ("startup-scram", 17),
        ("simple-query", 6),
        ("extended-query", 12),
        ("error-all-fields", 2),
        ("async-and-copy", 10),
    ] {
        let data = seed("backend_frames", name);
        let mut buf = &data[..];
        let mut n = 0;
        while let Some(len) = backend::check_frame(buf, backend::DEFAULT_MAX_MESSAGE_LEN)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        {
            let msg = backend::decode(&buf[..len]).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let BackendMessage::ErrorResponse(fields) = msg {
                let db = fields.to_db_error();
                assert_eq!((db.code(), db.line), ("23505", Some(666)));
            }
            buf = &buf[len..];
            n += 1;
        }
        assert!(buf.is_empty(), "{name}: {} bytes left over", buf.len());
        assert_eq!(n, frames, "{name}");
    }
}

#[test]
fn config_seeds_parse() {
    use pgwire_lite::Config;
    for name in [
        "form1",
        "form2",
        "form3",
        "form4",
        "form5",
        "kv-everything",
        "url-percent",
    ] {
        let dsn = String::from_utf8(seed("config_parse", name)).unwrap_or_default();
        if let Err(e) = dsn.parse::<Config>() {
            panic!("{name}: {e}");
        }
    }
    for name in ["secret1", "secret2", "secret3", "secret4", "secret5"] {
        let dsn = String::from_utf8(seed("config_parse", name)).unwrap_or_default();
        let cfg = dsn
            .parse::<Config>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            cfg.get_password(),
            Some(bodies::SECRET_MARKER.as_bytes()),
            "{name}"
        );
    }
}

#[test]
fn scram_valid_seeds_verify() {
    use pgwire_lite::auth::scram::ScramSha256;
    for name in ["valid", "valid-with-extension", "valid-one-iteration"] {
        let data = seed("scram", name);
        let (len, rest) = data.split_at(2);
        let (first, last) = rest.split_at(usize::from(u16::from_be_bytes([len[0], len[1]])));
        let mut scram = ScramSha256::with_nonce(bodies::SCRAM_PASSWORD, bodies::SCRAM_NONCE);
        scram
            .update(first)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        scram.finish(last).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(scram.is_verified(), "{name}");
    }
}

#[test]
fn from_sql_corpus() {
    replay("from_sql", bodies::from_sql);
}

#[test]
fn from_sql_seeds_decode() {
    use pgwire_lite::types::{Format, decode};
    fn get<T: pgwire_lite::types::FromSqlOwned>(name: &str, format: Format) -> T {
        let data = seed("from_sql", name);
        let ty = bodies::from_sql_type(data[0]);
        decode::<T>(&ty, format, Some(&data[1..])).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    assert_eq!(get::<i32>("int4-binary", Format::Binary), 42);
    assert_eq!(get::<i64>("int8-text", Format::Text), i64::MAX);
    assert_eq!(
        get::<Vec<Option<i32>>>("int4-array-binary", Format::Binary),
        [Some(1), None, Some(3)]
    );
    assert_eq!(
        get::<Vec<Option<String>>>("text-array-text", Format::Text),
        [
            Some("a b".into()),
            None,
            Some("c\"d".into()),
            Some("e".into())
        ]
    );
    assert_eq!(
        get::<pgwire_lite::types::Numeric>("numeric-binary", Format::Binary).to_string(),
        "12345.678"
    );
    let unknown = seed("from_sql", "unknown-type");
    assert_eq!(bodies::from_sql_type(unknown[0]), bodies::UNKNOWN_TYPE);
}
