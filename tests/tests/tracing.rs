//! The `tracing` output against a real PostgreSQL, captured by a hand-written recording
//! subscriber (no tracing-subscriber dependency): the query span carries OpenTelemetry's
//! database field names, an error records its SQLSTATE, the acquire span exists, slow statements
//! warn with the elapsed time, connections say why they closed, the transaction-pooler detection
//! warns exactly once (through a real PgBouncer), and neither a parameter value nor the password
//! ever reaches a span or an event.
//!
//! Its own test binary: the subscriber is the process-wide default. Each test finds its own
//! records by a marker comment in its SQL or a field only it produces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use pg_harness::{Bouncer, PoolMode, Role, SCRAM_PASS, cluster, unique_name};
use pool_core::{PsqlPool, PsqlPoolBuilder};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One span or event as recorded: every field as text (strings unquoted).
#[derive(Debug, Clone)]
struct Rec {
    span: bool,
    name: &'static str,
    target: String,
    level: Level,
    fields: Vec<(String, String)>,
}

impl Rec {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    fn message(&self) -> &str {
        self.get("message").unwrap_or("")
    }
}

static RECORDS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());
/// Span id -> index in `RECORDS`, for values recorded after creation.
static SPANS: Mutex<Option<HashMap<u64, usize>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

struct Recorder;

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let meta = attrs.metadata();
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut records = RECORDS.lock().unwrap();
        records.push(Rec {
            span: true,
            name: meta.name(),
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields,
        });
        SPANS
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(id, records.len() - 1);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let index = SPANS
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|m| m.get(&span.into_u64()).copied());
        if let Some(i) = index {
            let mut records = RECORDS.lock().unwrap();
            values.record(&mut Fields(&mut records[i].fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        RECORDS.lock().unwrap().push(Rec {
            span: false,
            name: meta.name(),
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(Recorder).expect("the only subscriber");
    });
}

fn records() -> Vec<Rec> {
    RECORDS.lock().unwrap().clone()
}

/// The query spans whose SQL contains `marker`.
fn query_spans(marker: &str) -> Vec<Rec> {
    records()
        .into_iter()
        .filter(|r| r.span && r.name == "query")
        .filter(|r| r.get("db.query.text").is_some_and(|q| q.contains(marker)))
        .collect()
}

/// Nothing recorded anywhere contains `secret`.
fn assert_absent(secret: &str) {
    for r in records() {
        for (k, v) in &r.fields {
            assert!(!v.contains(secret), "{secret:?} leaked into {k} of {r:?}");
        }
    }
}

/// A pool as the SCRAM role (a real password to look for), on the shared cluster.
fn builder() -> PsqlPoolBuilder {
    PsqlPool::builder()
        .dsn(cluster().url(Role::Scram))
        .max_db_pool_size(2)
}

#[tokio::test]
async fn query_and_acquire_spans_carry_the_semantic_convention_fields_and_no_values() {
    if !cluster().require_roles() {
        return;
    }
    install();
    let pool = builder().build().unwrap();
    pool.startup().await.unwrap();
    let secret_param = "param-value-7f3a9c";
    let sql = "/* span-fields */ SELECT $1::text, $2::int4";
    let r = pool
        .execute(sql, &[&secret_param, &918_273_645i32])
        .await
        .unwrap();
    assert_eq!(r.rows()[0].get::<_, String>(0), secret_param);
    // Twice: the cached path is traced as well.
    pool.execute(sql, &[&secret_param, &918_273_645i32])
        .await
        .unwrap();
    let spans = query_spans("span-fields");
    assert_eq!(spans.len(), 2, "{spans:?}");
    let port = cluster().port().to_string();
    let expected = [
        ("db.system.name", "postgresql"),
        ("db.namespace", cluster().db_name()),
        ("db.operation.name", "SELECT"),
        ("db.query.text", sql),
        ("server.address", cluster().host()),
        ("server.port", port.as_str()),
    ];
    for span in &spans {
        assert_eq!(span.level, Level::DEBUG);
        assert_eq!(span.target, "pgwire_lite::query");
        for (field, value) in expected {
            assert_eq!(span.get(field), Some(value), "{field} in {span:?}");
        }
        assert_eq!(span.get("db.response.status_code"), None, "no error");
    }
    let acquire = records()
        .into_iter()
        .find(|r| r.span && r.name == "acquire")
        .expect("an acquire span");
    assert_eq!(acquire.get("db.system.name"), Some("postgresql"));
    assert_eq!(acquire.get("server.port"), Some(port.as_str()));
    assert_eq!(acquire.get("db.namespace"), Some(cluster().db_name()));
    pool.close().await;
    assert_absent(secret_param);
    assert_absent("918273645");
    assert_absent(SCRAM_PASS);
}

#[tokio::test]
async fn a_failed_statement_records_its_sqlstate() {
    install();
    let pool = PsqlPool::builder()
        .dsn(cluster().admin_url())
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    let err = pool
        .execute("/* div-zero */ SELECT 1 / $1::int4", &[&0i32])
        .await
        .unwrap_err();
    assert_eq!(err.as_backend().and_then(|e| e.code()), Some("22012"));
    let spans = query_spans("div-zero");
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].get("db.response.status_code"), Some("22012"));
    pool.close().await;
}

#[tokio::test]
async fn slow_statements_warn_with_the_elapsed_time_and_fast_ones_do_not() {
    install();
    let pool = PsqlPool::builder()
        .dsn(cluster().admin_url())
        .slow_statement_threshold(Duration::from_millis(80))
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    pool.execute("/* slow-one */ SELECT pg_sleep(0.15)", &[])
        .await
        .unwrap();
    pool.execute("/* fast-one */ SELECT 1", &[]).await.unwrap();
    let slow: Vec<Rec> = records()
        .into_iter()
        .filter(|r| !r.span && r.message() == "slow statement")
        .collect();
    let mine: Vec<&Rec> = slow
        .iter()
        .filter(|r| {
            r.get("db.query.text")
                .is_some_and(|q| q.contains("slow-one"))
        })
        .collect();
    assert_eq!(mine.len(), 1, "{slow:?}");
    assert_eq!(mine[0].level, Level::WARN);
    assert_eq!(mine[0].get("db.operation.name"), Some("SELECT"));
    let ms: f64 = mine[0].get("elapsed_ms").unwrap().parse().unwrap();
    assert!(ms >= 150.0, "{ms}");
    assert_eq!(mine[0].get("threshold_ms"), Some("80.0"));
    assert!(
        !slow.iter().any(|r| r
            .get("db.query.text")
            .is_some_and(|q| q.contains("fast-one"))),
        "{slow:?}"
    );
    pool.close().await;
}

#[tokio::test]
async fn connections_say_why_they_closed() {
    install();
    let app = unique_name("trace_close");
    let pool = PsqlPool::builder()
        .dsn(format!("{}?application_name={app}", cluster().admin_url()))
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    let pid = pool.connection().await.unwrap().backend_pid();
    let before = records().len();
    let admin = PsqlPool::builder()
        .dsn(cluster().admin_url())
        .build()
        .unwrap();
    admin.startup().await.unwrap();
    admin
        .execute("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .await
        .unwrap();
    let c = pool.connection().await.unwrap();
    assert_ne!(c.backend_pid(), pid);
    drop(c);
    pool.close().await;
    admin.close().await;
    let closed: Vec<Rec> = records()[before..]
        .iter()
        .filter(|r| {
            !r.span && r.message() == "connection closed" && r.target == "pool_core::connection"
        })
        .cloned()
        .collect();
    let broken: Vec<&Rec> = closed
        .iter()
        .filter(|r| r.get("reason") == Some("broken"))
        .collect();
    assert!(!broken.is_empty(), "{closed:?}");
    assert_eq!(broken[0].level, Level::WARN);
    assert!(
        closed
            .iter()
            .any(|r| r.get("reason") == Some("pool") && r.level == Level::DEBUG),
        "{closed:?}"
    );
    assert!(
        records()[before..]
            .iter()
            .any(|r| !r.span && r.message() == "connection opened"),
        "the replacement was opened"
    );
}

#[tokio::test]
async fn the_transaction_pooler_detection_warns_once() {
    if !cluster().require_roles() {
        return;
    }
    install();
    let bouncer = Bouncer::start(cluster(), PoolMode::Transaction, 4);
    let pool = PsqlPool::builder()
        .dsn(bouncer.url())
        .max_db_pool_size(16)
        .wait_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    // Many borrowers at once, so several of them meet the symptom.
    let mut tasks: Vec<tokio::task::JoinHandle<pool_core::Result<()>>> = Vec::new();
    for b in 0..32i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..5i32 {
                let v = pool
                    .execute("/* pooler */ SELECT $1::int4 + $2::int4", &[&b, &r])
                    .await?;
                assert_eq!(v.rows()[0].get::<_, i32>(0), b + r);
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(pool.detected_transaction_pooler());
    let warnings: Vec<Rec> = records()
        .into_iter()
        .filter(|r| !r.span && r.target == "pool_core::pooler")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].level, Level::WARN);
    assert!(
        warnings[0].message().contains("transaction pooler"),
        "{warnings:?}"
    );
    let code = warnings[0].get("sqlstate").unwrap_or("");
    assert!(code == "26000" || code == "42P05", "{warnings:?}");
    pool.close().await;
}
