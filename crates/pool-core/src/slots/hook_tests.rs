//! Hooks and counters with the fake factory and paused time: a hook that fails, vetoes,
//! hangs or panics costs its connection, never its slot, and every close is counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::time::{advance, sleep, timeout};

use super::fake::{Fake, FakeConn, assert_quiescent, config};
use super::{Object, Slots};
use crate::error::{Error, TimeoutKind};
use crate::hooks::{AfterConnect, BoxFuture, CheckHook, ConnectionMetadata, HookResult, Hooks};

const PANIC_MESSAGE: &str = "hook test: deliberate panic";

/// Keeps the deliberate panics out of the test output; any other panic still prints.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC_MESSAGE) {
                default(info);
            }
        }));
    });
}

fn connect_hook<F>(f: F) -> Option<Arc<AfterConnect<FakeConn>>>
where
    F: for<'c> Fn(&'c mut FakeConn) -> BoxFuture<'c, HookResult<()>> + Send + Sync + 'static,
{
    Some(Arc::new(f))
}

fn check_hook<F>(f: F) -> Option<Arc<CheckHook<FakeConn>>>
where
    F: for<'c> Fn(&'c mut FakeConn, ConnectionMetadata) -> BoxFuture<'c, HookResult<bool>>
        + Send
        + Sync
        + 'static,
{
    Some(Arc::new(f))
}

fn pool(max_size: usize, hooks: Hooks<FakeConn>) -> (Arc<Slots<Arc<Fake>>>, Arc<Fake>) {
    let fake = Arc::new(Fake::new());
    (
        Slots::with_hooks(Arc::clone(&fake), config(max_size), hooks),
        fake,
    )
}

fn id(obj: &Object<Arc<Fake>>) -> usize {
    obj.conn().map(|c| c.id).unwrap_or(usize::MAX)
}

/// Lets spawned tasks (release hooks, background resets) run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn after_connect_errors_and_panics_free_the_slot_then_the_pool_serves() {
    quiet_deliberate_panics();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let hooks = Hooks {
        after_connect: connect_hook(move |_conn| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match n {
                    0..3 => Err(format!("refused #{n}").into()),
                    3..5 => {
                        tokio::task::yield_now().await;
                        std::panic::panic_any(PANIC_MESSAGE)
                    }
                    // A panic in the call itself, before any future exists, is caught too.
                    _ => Ok(()),
                }
            })
        }),
        ..Hooks::default()
    };
    let (slots, fake) = pool(2, hooks);
    for n in 0..5 {
        match slots.get().await {
            Err(Error::Hook { hook, source }) => {
                assert_eq!(hook, "after_connect");
                let msg = source.to_string();
                if n < 3 {
                    assert_eq!(msg, format!("refused #{n}"));
                } else {
                    assert!(msg.contains(PANIC_MESSAGE), "{msg}");
                }
            }
            other => panic!("attempt {n}: {other:?}"),
        }
        let s = slots.status();
        assert_eq!((s.size, s.in_use), (0, 0), "attempt {n}: {s:?}");
    }
    // Both slots still there: two borrowers at once.
    let a = slots.get().await.unwrap();
    let b = slots.get().await.unwrap();
    drop((a, b));
    let st = slots.stats();
    assert_eq!(st.connections_created, 7, "{st:?}");
    assert_eq!(st.closed_by_hook, 5, "{st:?}");
    assert_eq!(st.hook_failures, 5, "{st:?}");
    assert_eq!(st.acquires, 2, "{st:?}");
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn a_hook_panicking_in_the_call_itself_is_caught() {
    quiet_deliberate_panics();
    let hooks = Hooks {
        after_connect: connect_hook(|_conn| std::panic::panic_any(PANIC_MESSAGE)),
        ..Hooks::default()
    };
    let (slots, fake) = pool(2, hooks);
    for _ in 0..4 {
        assert!(matches!(slots.get().await, Err(Error::Hook { .. })));
    }
    assert_eq!(slots.stats().closed_by_hook, 4);
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_after_connect_hits_the_create_timeout_and_is_counted_aborted() {
    let hooks = Hooks {
        after_connect: connect_hook(|_conn| Box::pin(std::future::pending())),
        ..Hooks::default()
    };
    let (slots, fake) = pool(2, hooks);
    let err = slots.get().await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Create)),
        "{err:?}"
    );
    let st = slots.stats();
    assert_eq!(
        (
            st.connections_created,
            st.create_timeouts,
            st.create_failures
        ),
        (1, 1, 0),
        "the connection existed: a timeout, not a failed open: {st:?}"
    );
    assert_eq!(st.closed_aborted, 1, "{st:?}");
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn before_acquire_vetoes_and_panics_close_that_connection_and_the_checkout_goes_on() {
    quiet_deliberate_panics();
    let metas = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&metas);
    let hooks = Hooks {
        before_acquire: check_hook(move |conn, meta| {
            log.lock().unwrap().push((conn.id, meta));
            let id = conn.id;
            Box::pin(async move {
                match id {
                    0 => Ok(false),
                    1 => std::panic::panic_any(PANIC_MESSAGE),
                    2 => Err("nope".into()),
                    _ => Ok(true),
                }
            })
        }),
        ..Hooks::default()
    };
    let (slots, fake) = pool(4, hooks);
    let (a, b, c) = (
        slots.get().await.unwrap(),
        slots.get().await.unwrap(),
        slots.get().await.unwrap(),
    );
    assert_eq!(
        (id(&a), id(&b), id(&c)),
        (0, 1, 2),
        "fresh ones skip the hook"
    );
    assert!(metas.lock().unwrap().is_empty());
    drop((c, b, a));
    advance(Duration::from_secs(3)).await;
    // Idle stack, top first: 0 (veto), 1 (panic), 2 (error); then a new one (3).
    let d = slots.get().await.unwrap();
    assert_eq!(id(&d), 3);
    let seen = metas.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let (_, meta) = seen[0];
    assert!(meta.idle_for >= Duration::from_secs(3), "{meta:?}");
    assert!(meta.age >= meta.idle_for, "{meta:?}");
    assert_eq!(meta.checkouts, 0);
    drop(d);
    // The survivor goes through the hook (it approves id 3) and is reused.
    let again = slots.get().await.unwrap();
    assert_eq!(id(&again), 3);
    assert_eq!(again.metrics().map(|m| m.recycle_count()), Some(1));
    drop(again);
    let st = slots.stats();
    assert_eq!((st.closed_by_hook, st.hook_failures), (3, 2), "{st:?}");
    assert_eq!(st.acquires, 5, "{st:?}");
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn after_release_vetoes_errors_and_panics_close_the_connection_once_per_borrow() {
    quiet_deliberate_panics();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let hooks = Hooks {
        after_release: check_hook(move |conn, meta| {
            seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(meta.idle_for, Duration::ZERO);
            assert!(!conn.dirty, "the pool resets before the release hook");
            let id = conn.id;
            Box::pin(async move {
                match id {
                    0 => Ok(false),
                    1 => Err("nope".into()),
                    2 => std::panic::panic_any(PANIC_MESSAGE),
                    _ => Ok(true),
                }
            })
        }),
        ..Hooks::default()
    };
    let (slots, fake) = pool(4, hooks);
    let mut held: Vec<_> = Vec::new();
    for _ in 0..4 {
        held.push(slots.get().await.unwrap());
    }
    // Id 3 comes back dirty: reset first, then the hook, once.
    if let Some(c) = held[3].conn_mut() {
        c.dirty = true;
    }
    drop(held);
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(Fake::count(&fake.resets), 1);
    let s = slots.status();
    assert_eq!((s.size, s.idle, s.in_use), (1, 1, 0), "{s:?}");
    let st = slots.stats();
    assert_eq!((st.closed_by_hook, st.hook_failures), (3, 2), "{st:?}");
    // The pool keeps serving at full size.
    let mut held: Vec<_> = Vec::new();
    for _ in 0..4 {
        held.push(slots.get_timeout(Duration::ZERO).await.unwrap());
    }
    drop(held);
    settle().await;
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn waits_timeouts_and_cancelled_checkouts_are_counted() {
    let (slots, fake) = pool(1, Hooks::default());
    let held = slots.get().await.unwrap();
    // Cancelled while queued.
    assert!(
        timeout(Duration::from_millis(5), slots.get())
            .await
            .is_err()
    );
    // Timed out while queued.
    let err = slots
        .get_timeout(Duration::from_millis(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(TimeoutKind::Wait)));
    // Queued 20 ms, then served.
    let waiter = {
        let slots = Arc::clone(&slots);
        tokio::spawn(async move { slots.get().await.map(drop) })
    };
    sleep(Duration::from_millis(20)).await;
    drop(held);
    waiter.await.unwrap().unwrap();
    let st = slots.stats();
    assert_eq!(
        (
            st.acquires,
            st.acquires_waited,
            st.acquires_cancelled,
            st.wait_timeouts
        ),
        (2, 1, 1, 1),
        "{st:?}"
    );
    assert_eq!(st.acquire_wait_time, Duration::from_millis(20));
    assert_eq!(st.connections_created, 1);
    assert_quiescent(&slots, &fake);
}
