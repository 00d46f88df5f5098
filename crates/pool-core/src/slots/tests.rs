//! Slot logic with the fake factory and paused time: no I/O, deterministic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, advance, sleep};

use super::fake::{Fake, Gate, assert_adds_up, assert_quiescent, config, pool, pool_with};
use crate::error::{Error, TimeoutKind};

fn id(obj: &super::Object<Arc<Fake>>) -> usize {
    obj.conn().map(|c| c.id).unwrap_or(usize::MAX)
}

fn set_gate(gate: &Mutex<Gate>, g: Gate) {
    *gate.lock().unwrap() = g;
}

/// Lets spawned tasks (background resets, woken waiters) run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_reused_most_recent_first() {
    let (slots, fake) = pool(4);
    let a = slots.get().await.unwrap();
    let b = slots.get().await.unwrap();
    let c = slots.get().await.unwrap();
    assert_eq!((id(&a), id(&b), id(&c)), (0, 1, 2));
    drop(a);
    drop(c);
    drop(b);
    // Stack (top last): 0, 2, 1.
    let x = slots.get().await.unwrap();
    assert_eq!(id(&x), 1);
    let y = slots.get().await.unwrap();
    assert_eq!(id(&y), 2);
    assert_eq!(
        Fake::count(&fake.created),
        3,
        "no new connection while idle ones exist"
    );
    assert_eq!(Fake::count(&fake.recycled), 2);
    let s = slots.status();
    assert_eq!((s.size, s.idle, s.in_use, s.available), (3, 1, 2, 1));
    drop((x, y));
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_first_come_first_served() {
    let (slots, fake) = pool(1);
    let held = slots.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (slots, order) = (Arc::clone(&slots), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let c = slots.get().await.unwrap();
            order.lock().unwrap().push(i);
            sleep(Duration::from_millis(1)).await;
            drop(c);
        }));
        // Make arrival order unambiguous.
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(slots.status().waiting, 8);
    drop(held);
    // A late arrival must queue behind the eight, not barge in when a slot frees.
    let late = {
        let (slots, order) = (Arc::clone(&slots), Arc::clone(&order));
        tokio::spawn(async move {
            let _c = slots.get().await.unwrap();
            order.lock().unwrap().push(99);
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    late.await.unwrap();
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5, 6, 7, 99]);
    assert_quiescent(&slots, &fake);
    assert_eq!(Fake::count(&fake.created), 1);
}

#[tokio::test(start_paused = true)]
async fn wait_timeout_when_every_slot_is_busy() {
    let (slots, fake) = pool(2);
    let a = slots.get().await.unwrap();
    let b = slots.get().await.unwrap();
    let start = Instant::now();
    let err = slots.get().await.unwrap_err();
    assert!(matches!(err, Error::Timeout(TimeoutKind::Wait)), "{err:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "the default wait timeout is 30 s"
    );
    let err = slots.get_timeout(Duration::ZERO).await.unwrap_err();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Wait));
    assert_eq!(slots.status().waiting, 0);
    drop((a, b));
    // A zero wait succeeds when a slot is free.
    assert!(slots.get_timeout(Duration::ZERO).await.is_ok());
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn create_timeout_is_its_own_error_and_frees_the_slot() {
    let (slots, fake) = pool(2);
    set_gate(&fake.create, Gate::Never);
    let start = Instant::now();
    let err = slots.get().await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Create)),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_quiescent(&slots, &fake);
    assert_eq!(slots.status().size, 0);
    set_gate(&fake.create, Gate::Ok);
    assert!(slots.get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn recycle_timeout_is_its_own_error_and_closes_the_connection() {
    let (slots, fake) = pool(2);
    drop(slots.get().await.unwrap());
    set_gate(&fake.recycle, Gate::Never);
    let err = slots.get().await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Recycle)),
        "{err:?}"
    );
    assert_quiescent(&slots, &fake);
    assert_eq!(slots.status().size, 0, "the stuck connection was closed");
    set_gate(&fake.recycle, Gate::Ok);
    assert_eq!(id(&slots.get().await.unwrap()), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_recycle_closes_that_connection_and_goes_on() {
    let (slots, fake) = pool(3);
    let a = slots.get().await.unwrap();
    let b = slots.get().await.unwrap();
    drop((a, b));
    set_gate(&fake.recycle, Gate::Err);
    // Both idle connections fail their check; the borrower still gets a fresh one.
    let c = slots.get().await.unwrap();
    assert_eq!(id(&c), 2);
    assert_eq!(fake.live(), 1);
    let s = slots.status();
    assert_eq!((s.size, s.in_use, s.idle), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn creation_failure_reaches_the_borrower_and_the_pool_recovers() {
    let (slots, fake) = pool(2);
    set_gate(&fake.create, Gate::Err);
    for _ in 0..5 {
        let err = slots.get().await.unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Backend(_)) && msg.contains("connection refused"),
            "{msg}"
        );
        assert_quiescent(&slots, &fake);
    }
    // "The server is back."
    set_gate(&fake.create, Gate::Ok);
    let a = slots.get().await.unwrap();
    let b = slots.get().await.unwrap();
    assert_eq!(slots.status().in_use, 2);
    drop((a, b));
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn close_wakes_waiters_refuses_borrows_and_closes_idle() {
    let (slots, fake) = pool(2);
    let held = slots.get().await.unwrap();
    drop(slots.get().await.unwrap()); // one idle
    let held2 = slots.get().await.unwrap();
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let slots = Arc::clone(&slots);
        waiters.push(tokio::spawn(async move { slots.get().await }));
    }
    settle().await;
    assert_eq!(slots.status().waiting, 3);
    drop(held2); // back to idle
    settle().await;
    // One waiter got it; hold the others.
    let start = Instant::now();
    slots.close().await;
    let mut closed = 0;
    for w in waiters {
        match w.await.unwrap() {
            Err(Error::Closed) => closed += 1,
            Ok(obj) => drop(obj),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(closed, 2);
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "waiters woke at once"
    );
    assert!(matches!(slots.get().await, Err(Error::Closed)));
    assert!(matches!(
        slots.get_timeout(Duration::ZERO).await,
        Err(Error::Closed)
    ));
    drop(held);
    let s = slots.status();
    assert_eq!((s.size, s.idle, s.in_use, s.waiting), (0, 0, 0, 0));
    assert_eq!(fake.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn resize_grows_and_shrinks() {
    let (slots, fake) = pool(2);
    let a = slots.get().await.unwrap();
    let b = slots.get().await.unwrap();
    let waiter = {
        let slots = Arc::clone(&slots);
        tokio::spawn(async move { slots.get().await.map(drop) })
    };
    settle().await;
    assert_eq!(slots.status().waiting, 1);
    slots.resize(3);
    waiter.await.unwrap().unwrap();
    assert_eq!(slots.status().max_size, 3);
    let c = slots.get().await.unwrap(); // reuses the waiter's idle connection
    assert_adds_up(&slots);
    // Shrink below what is in use: the surplus goes away as it comes back.
    slots.resize(1);
    assert_eq!(slots.status().in_use, 3);
    drop((a, b, c));
    let s = slots.status();
    assert_eq!((s.max_size, s.size, s.idle), (1, 1, 1), "{s:?}");
    assert_eq!(fake.live(), 1);
    let held = slots.get().await.unwrap();
    let err = slots
        .get_timeout(Duration::from_millis(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.timeout_kind(),
        Some(TimeoutKind::Wait),
        "one permit only"
    );
    drop(held);
    // Shrink and grow again before anything came back: the bookkeeping cancels out.
    let x = slots.get().await.unwrap();
    slots.resize(3);
    slots.resize(2);
    let y = slots.get().await.unwrap();
    assert!(slots.get_timeout(Duration::from_millis(5)).await.is_err());
    drop((x, y));
    assert_quiescent(&slots, &fake);
    assert_eq!(slots.status().max_size, 2);
    // Shrinking closes surplus idle connections at once.
    let p = slots.get().await.unwrap();
    let q = slots.get().await.unwrap();
    drop((p, q));
    assert_eq!(slots.status().idle, 2);
    slots.resize(1);
    assert_eq!(slots.status().idle, 1);
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_the_server_closed_is_replaced_at_checkout() {
    let (slots, fake) = pool(2);
    drop(slots.get().await.unwrap());
    fake.killed.lock().unwrap().insert(0);
    let c = slots.get().await.unwrap();
    assert_eq!(
        id(&c),
        1,
        "the dead one was noticed without a recycle round trip"
    );
    assert_eq!(Fake::count(&fake.recycled), 0);
    assert_eq!(fake.live(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_closed_on_return() {
    let (slots, fake) = pool(2);
    let mut c = slots.get().await.unwrap();
    c.conn_mut().unwrap().broken = true;
    drop(c);
    assert_quiescent(&slots, &fake);
    assert_eq!(slots.status().size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_dirty_connection_is_reset_in_the_background_before_anyone_sees_it() {
    let (slots, fake) = pool(2);
    set_gate(&fake.reset, Gate::Slow(Duration::from_millis(50)));
    let mut c = slots.get().await.unwrap();
    c.conn_mut().unwrap().dirty = true;
    drop(c);
    // Still holding its slot while the reset runs: counted in use, not idle.
    let s = slots.status();
    assert_eq!((s.in_use, s.idle), (1, 0));
    sleep(Duration::from_millis(60)).await;
    assert_quiescent(&slots, &fake);
    assert_eq!(slots.status().idle, 1);
    let c = slots.get().await.unwrap();
    assert!(!c.conn().unwrap().dirty);
    assert_eq!((id(&c), Fake::count(&fake.resets)), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_dirty_connection_that_cannot_be_reset_is_closed() {
    let (slots, fake) = pool(2);
    for gate in [Gate::Err, Gate::Never] {
        set_gate(&fake.reset, gate);
        let mut c = slots.get().await.unwrap();
        c.conn_mut().unwrap().dirty = true;
        drop(c);
        sleep(Duration::from_secs(6)).await; // past the recycle timeout
        assert_quiescent(&slots, &fake);
        assert_eq!(slots.status().size, 0, "{gate:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn dropped_outside_a_runtime_the_next_checkout_resets_it() {
    let (slots, fake) = pool(2);
    let mut c = slots.get().await.unwrap();
    c.conn_mut().unwrap().dirty = true;
    // No tokio runtime on this thread, so nothing can be spawned.
    std::thread::spawn(move || drop(c)).join().unwrap();
    assert_eq!(slots.status().idle, 1);
    assert_eq!(Fake::count(&fake.resets), 0);
    let c = slots.get().await.unwrap();
    assert_eq!(id(&c), 0);
    assert!(!c.conn().unwrap().dirty);
    assert_eq!(Fake::count(&fake.resets), 1);
    drop(c);
    // A reset that fails at checkout closes it and the borrower gets a new one.
    let mut c = slots.get().await.unwrap();
    c.conn_mut().unwrap().dirty = true;
    std::thread::spawn(move || drop(c)).join().unwrap();
    set_gate(&fake.reset, Gate::Err);
    let c = slots.get().await.unwrap();
    assert_eq!(id(&c), 1);
    drop(c);
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_closes_old_connections_at_checkout_and_return() {
    let mut cfg = config(2);
    cfg.max_lifetime = Some(Duration::from_secs(100));
    let (slots, fake) = pool_with(cfg, Fake::new());
    let c = slots.get().await.unwrap();
    drop(c);
    advance(Duration::from_secs(101)).await;
    let c = slots.get().await.unwrap();
    assert_eq!(id(&c), 1, "expired idle connection replaced");
    advance(Duration::from_secs(101)).await;
    drop(c);
    assert_eq!(slots.status().size, 0, "expired on return: closed");
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn lifetimes_are_jittered() {
    let mut cfg = config(8);
    cfg.max_lifetime = Some(Duration::from_secs(1000));
    let (slots, _fake) = pool_with(cfg, Fake::new());
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(slots.get().await.unwrap());
    }
    drop(held);
    // Within 10 % of the lifetime, and not all the same.
    let mut expiries: Vec<_> = slots
        .lock()
        .idle
        .iter()
        .filter_map(|e| e.expires_at)
        .collect();
    expiries.sort();
    expiries.dedup();
    let start = Instant::now();
    assert!(expiries.len() > 1, "{expiries:?}");
    for at in expiries {
        let left = at - start;
        assert!(left >= Duration::from_secs(900) && left <= Duration::from_secs(1000));
    }
}

#[tokio::test(start_paused = true)]
async fn a_lifetime_past_the_end_of_time_means_never_expires() {
    let mut cfg = config(2);
    cfg.max_lifetime = Some(Duration::MAX);
    let (slots, fake) = pool_with(cfg, Fake::new());
    let first = id(&slots.get().await.unwrap());
    advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(
        id(&slots.get().await.unwrap()),
        first,
        "still the same connection"
    );
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn maintenance_closes_idle_above_min_idle_and_keeps_min_idle_warm() {
    let mut cfg = config(4);
    cfg.idle_timeout = Some(Duration::from_secs(40));
    cfg.min_idle = 2;
    let (slots, fake) = pool_with(cfg, Fake::new());
    assert_eq!(slots.maintenance_interval(), Some(Duration::from_secs(10)));
    slots.spawn_maintenance();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        slots.status().idle,
        2,
        "warmed to min_idle without any borrower"
    );
    let held: Vec<_> = futures_join(&slots, 4).await;
    drop(held);
    assert_eq!(slots.status().idle, 4);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(slots.status().idle, 2, "idle ones above min_idle closed");
    assert!(Fake::count(&fake.closed_politely) >= 2);
    // A borrower is never made to wait behind maintenance.
    let all = futures_join(&slots, 4).await;
    sleep(Duration::from_secs(30)).await;
    assert_eq!(slots.status().in_use, 4);
    drop(all);
    slots.close().await;
    sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn maintenance_replaces_expired_connections() {
    let mut cfg = config(3);
    cfg.max_lifetime = Some(Duration::from_secs(60));
    cfg.min_idle = 1;
    let (slots, fake) = pool_with(cfg, Fake::new());
    slots.spawn_maintenance();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.created_ids(), 1);
    sleep(Duration::from_secs(120)).await;
    let s = slots.status();
    assert_eq!(s.idle, 1);
    assert!(fake.created_ids() >= 3, "replaced after each lifetime");
    assert_quiescent(&slots, &fake);
}

#[tokio::test(start_paused = true)]
async fn the_min_idle_filler_backs_off_while_creates_fail() {
    let mut cfg = config(4);
    cfg.idle_timeout = Some(Duration::from_millis(400));
    cfg.min_idle = 2;
    let (slots, fake) = pool_with(cfg, Fake::new());
    assert_eq!(
        slots.maintenance_interval(),
        Some(Duration::from_millis(100))
    );
    set_gate(&fake.create, Gate::Err);
    slots.spawn_maintenance();
    sleep(Duration::from_millis(3050)).await;
    // A try every tick would be 31; pauses of 100, 200, 400, 800, 1600 ms leave 5.
    let attempts = Fake::count(&fake.create_attempts);
    assert!((3..=6).contains(&attempts), "{attempts} creates in 3 s");
    // Borrowers are not held back by the filler's backoff: they try, and see the error.
    let start = Instant::now();
    assert!(matches!(slots.get().await, Err(Error::Backend(_))));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_adds_up(&slots);
    // Once creates work again, min_idle is reached within the longest pause.
    set_gate(&fake.create, Gate::Ok);
    sleep(Duration::from_millis(2200)).await;
    assert_eq!(slots.status().idle, 2);
    slots.close().await;
}

#[tokio::test(start_paused = true)]
async fn no_maintenance_task_without_anything_to_maintain() {
    let (slots, _fake) = pool(2);
    assert_eq!(slots.maintenance_interval(), None);
}

#[tokio::test(start_paused = true)]
async fn warm_one_reports_the_creation_error() {
    let (slots, fake) = pool(2);
    set_gate(&fake.create, Gate::Err);
    assert!(matches!(slots.warm_one().await, Err(Error::Backend(_))));
    set_gate(&fake.create, Gate::Ok);
    slots.warm_one().await.unwrap();
    assert_eq!(slots.status().idle, 1);
}

/// deadpool's gate-matrix idea: every combination of create / recycle / reset behaviour,
/// borrowers cancelled at growing delays, then the counts must add up and no slot be lost.
#[tokio::test(start_paused = true)]
async fn cancellation_at_every_step_never_leaks() {
    let gates = [
        Gate::Ok,
        Gate::Err,
        Gate::Slow(Duration::from_millis(3)),
        Gate::Never,
    ];
    for create in gates {
        for recycle in gates {
            for reset in gates {
                let mut cfg = config(2);
                cfg.create_timeout = Duration::from_millis(20);
                cfg.recycle_timeout = Duration::from_millis(20);
                let (slots, fake) = pool_with(cfg, Fake::new());
                // Seed one idle clean and one idle dirty connection (before the gates apply).
                let a = slots.get().await.unwrap();
                let mut b = slots.get().await.unwrap();
                b.conn_mut().unwrap().dirty = true;
                std::thread::spawn(move || drop(b)).join().unwrap();
                drop(a);
                set_gate(&fake.create, create);
                set_gate(&fake.recycle, recycle);
                set_gate(&fake.reset, reset);
                for cancel_after_us in [0u64, 1, 500, 1_000, 2_999, 3_000, 5_000, 25_000] {
                    let fut = slots.get();
                    let r = tokio::time::timeout(Duration::from_micros(cancel_after_us), fut).await;
                    if let Ok(Ok(mut obj)) = r {
                        // Half the successes go back dirty.
                        if cancel_after_us % 2 == 0 {
                            obj.conn_mut().unwrap().dirty = true;
                        }
                    }
                    assert_adds_up(&slots);
                }
                sleep(Duration::from_millis(50)).await;
                let ctx = format!("create {create:?} recycle {recycle:?} reset {reset:?}");
                let s = slots.status();
                assert_eq!(s.in_use, 0, "{ctx}: {s:?}");
                assert_eq!(fake.live(), s.idle, "{ctx}: {s:?}");
                // Every permit is back: two borrowers can hold slots at once (with sane gates).
                set_gate(&fake.create, Gate::Ok);
                set_gate(&fake.recycle, Gate::Ok);
                set_gate(&fake.reset, Gate::Ok);
                let x = slots.get_timeout(Duration::ZERO).await.unwrap();
                let y = slots.get_timeout(Duration::ZERO).await.unwrap();
                drop((x, y));
                assert_quiescent(&slots, &fake);
            }
        }
    }
}

async fn futures_join(
    slots: &Arc<super::Slots<Arc<Fake>>>,
    n: usize,
) -> Vec<super::Object<Arc<Fake>>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(slots.get().await.unwrap());
    }
    out
}

impl Fake {
    fn created_ids(&self) -> usize {
        Fake::count(&self.created)
    }
}
