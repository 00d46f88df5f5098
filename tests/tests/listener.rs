//! LISTEN/NOTIFY: `PgListener` (its own connection, reconnecting with a gap signal),
//! `Connection::wait_for_notification`, and `PooledConnection::notifications`, against the real
//! server. The restart test uses its own `Cluster::start_throwaway()`.

mod common;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use common::{admin, pool_builder, started};
use futures_core::Stream;
use pg_harness::{Cluster, Role, unique_name};
use pgwire_lite::{Config, Connection};
use pool_core::{Error, ListenerEvent, Notification, PgListener, PsqlPool};

/// Every wait below is bounded: a lost notification fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

async fn recv(l: &mut PgListener) -> ListenerEvent {
    tokio::time::timeout(LIMIT, l.recv())
        .await
        .expect("an event within the limit")
        .expect("recv")
}

async fn notification(l: &mut PgListener) -> Notification {
    match recv(l).await {
        ListenerEvent::Notification(n) => n,
        other => panic!("expected a notification, got {other:?}"),
    }
}

async fn gap(l: &mut PgListener) -> String {
    match recv(l).await {
        ListenerEvent::Gap { cause } => cause,
        other => panic!("expected a gap, got {other:?}"),
    }
}

/// `pg_notify(channel, payload)` from a pooled connection; returns that backend's pid.
async fn notify(pool: &PsqlPool, channel: &str, payload: &str) -> i32 {
    let mut c = pool.connection().await.unwrap();
    c.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
        .await
        .unwrap();
    c.backend_pid()
}

#[tokio::test]
async fn notifications_arrive_in_order_on_listened_channels_only() {
    let pool = started(pool_builder(&unique_name("ln_basic"), 2)).await;
    let mut l = pool.listener().await.unwrap();
    // Quoted as given: case, spaces and quotes are part of the name.
    let (a, b) = ("Jobs Queue", "odd \"name\"");
    l.listen(a).await.unwrap();
    l.listen(b).await.unwrap();
    l.listen(a).await.unwrap();
    assert_eq!(l.channels().collect::<Vec<_>>(), [a, b]);

    let pid = notify(&pool, a, "first").await;
    notify(&pool, "jobs queue", "another channel").await;
    notify(&pool, b, "second").await;
    let n = notification(&mut l).await;
    assert_eq!(
        (n.channel.as_str(), n.payload.as_str(), n.process_id),
        (a, "first", pid)
    );
    let n = notification(&mut l).await;
    assert_eq!((n.channel.as_str(), n.payload.as_str()), (b, "second"));

    l.unlisten(b).await.unwrap();
    notify(&pool, b, "not listened").await;
    notify(&pool, a, "third").await;
    assert_eq!(notification(&mut l).await.payload, "third");
    assert!(l.try_recv().is_none());

    // The same listener as a Stream.
    let mut stream = Box::pin(l.into_stream());
    notify(&pool, a, "streamed").await;
    let item = tokio::time::timeout(LIMIT, poll_fn(|cx| Pin::as_mut(&mut stream).poll_next(cx)))
        .await
        .unwrap();
    match item {
        Some(Ok(ListenerEvent::Notification(n))) => assert_eq!(n.payload, "streamed"),
        other => panic!("{other:?}"),
    }
    pool.close().await;
}

#[tokio::test]
async fn invalid_channel_names_are_refused_before_anything_is_sent() {
    let pool = started(pool_builder(&unique_name("ln_bad"), 2)).await;
    let mut l = pool.listener().await.unwrap();
    for bad in ["", &"c".repeat(64), "nul\0byte"] {
        let e = l.listen(bad).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidName {
                    what: "channel",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("invalid channel name"), "{e}");
        assert!(l.unlisten(bad).await.is_err());
    }
    assert_eq!(l.channels().count(), 0);
    // The longest name PostgreSQL keeps whole works, and the listener is still fine.
    let longest = "c".repeat(63);
    l.listen(&longest).await.unwrap();
    notify(&pool, &longest, "ok").await;
    assert_eq!(notification(&mut l).await.channel, longest);
    pool.close().await;
}

#[tokio::test]
async fn terminating_the_listeners_backend_reconnects_and_signals_a_gap() {
    let pool = started(pool_builder(&unique_name("ln_kill"), 2)).await;
    let mut l = pool.listener().await.unwrap();
    l.listen("k1").await.unwrap();
    l.listen("k2").await.unwrap();
    let old = l.backend_pid().unwrap();
    let mut admin = admin().await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&old])
        .await
        .unwrap();

    let cause = gap(&mut l).await;
    assert!(
        cause.contains("57P01") || cause.contains("terminat"),
        "{cause}"
    );
    let new = l.backend_pid().unwrap();
    assert_ne!(new, old);
    // Both channels are listened again on the new connection.
    notify(&pool, "k2", "after").await;
    notify(&pool, "k1", "after too").await;
    assert_eq!(notification(&mut l).await.payload, "after");
    assert_eq!(notification(&mut l).await.payload, "after too");

    // Terminated while nobody waits: the next call to listen reconnects, and recv reports
    // the gap before anything else.
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&new])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    l.listen("k3").await.unwrap();
    notify(&pool, "k3", "third").await;
    gap(&mut l).await;
    assert_eq!(notification(&mut l).await.payload, "third");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_reconnects_and_signals_a_gap() {
    let pg = Cluster::start_throwaway();
    let mut config: Config = pg.url(Role::Postgres).parse().unwrap();
    config.connect_timeout(Duration::from_secs(2));
    let mut l = PgListener::connect(&config).await.unwrap();
    l.listen("restart").await.unwrap();

    // The listener waits while the server restarts.
    let waiting = tokio::spawn(async move {
        let cause = gap(&mut l).await;
        (l, cause)
    });
    tokio::task::block_in_place(|| pg.restart());
    let (mut l, cause) = tokio::time::timeout(LIMIT, waiting).await.unwrap().unwrap();
    assert!(!cause.is_empty());

    let mut other = Connection::connect(&config).await.unwrap();
    other
        .batch_execute("NOTIFY restart, 'after the restart'")
        .await
        .unwrap();
    let n = notification(&mut l).await;
    assert_eq!(
        (n.channel.as_str(), n.payload.as_str()),
        ("restart", "after the restart")
    );
    assert_eq!(n.process_id, other.backend_pid());
}

#[tokio::test]
async fn wait_for_notification_is_cancel_safe_and_the_connection_stays_usable() {
    let cfg: Config = pg_harness::cluster().admin_url().parse().unwrap();
    let mut conn = Connection::connect(&cfg).await.unwrap();
    let mut other = Connection::connect(&cfg).await.unwrap();
    conn.batch_execute("LISTEN w").await.unwrap();
    for i in 0..3 {
        // Timed out (dropped) while waiting: nothing is lost or left half-read.
        let r = tokio::time::timeout(Duration::from_millis(30), conn.wait_for_notification()).await;
        assert!(r.is_err());
        other
            .batch_execute(&format!("NOTIFY w, 'n{i}'"))
            .await
            .unwrap();
        let n = tokio::time::timeout(LIMIT, conn.wait_for_notification())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.payload, format!("n{i}"));
        assert_eq!(
            conn.query_one("SELECT 1::int4", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            1
        );
    }
    // Notifications that arrived with a query's response are served from the queue first.
    other.batch_execute("NOTIFY w, 'queued'").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(
        conn.wait_for_notification().await.unwrap().payload,
        "queued"
    );
}

#[tokio::test]
async fn pooled_connections_hand_over_their_notifications() {
    let pool = started(pool_builder(&unique_name("ln_pooled"), 2)).await;
    let mut conn = pool.connection().await.unwrap();
    conn.batch_execute("LISTEN pooled").await.unwrap();
    assert!(conn.notifications().is_empty());
    for i in 0..3 {
        notify(&pool, "pooled", &format!("p{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.batch_execute("SELECT 1").await.unwrap();
    let got: Vec<String> = conn
        .notifications()
        .into_iter()
        .map(|n| n.payload)
        .collect();
    assert_eq!(got, ["p0", "p1", "p2"]);
    assert!(conn.notifications().is_empty(), "drained");
    conn.batch_execute("UNLISTEN *").await.unwrap();
    drop(conn);
    pool.close().await;
}
