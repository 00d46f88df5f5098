//! Thousands of random borrowers over a small pool: borrow, hold, drop, cancel (while waiting,
//! while being created or recycled, while holding), return dirty or broken, panic while
//! holding, against a factory that fails and stalls at random. Afterwards every borrower has
//! finished, the counts add up, and every slot can be borrowed again: nothing leaked.

use std::sync::Arc;
use std::sync::Once;
use std::time::Duration;

use tokio::time::{sleep, timeout};

use super::Slots;
use super::fake::{Fake, Gate, Rng, assert_adds_up, assert_quiescent, config, pool_with};
use crate::error::{Error, TimeoutKind};

const PANIC_MESSAGE: &str = "stress: deliberate panic while holding a connection";

/// Keeps the deliberate panics out of the test output; any other panic still prints.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let deliberate = info.payload().downcast_ref::<&str>() == Some(&PANIC_MESSAGE);
            if !deliberate {
                default(info);
            }
        }));
    });
}

#[derive(Debug, Default)]
struct Outcomes {
    ok: usize,
    wait_timeouts: usize,
    other_timeouts: usize,
    backend_errors: usize,
    cancelled: usize,
    panicked: usize,
}

type Pool = Arc<Slots<Arc<Fake>>>;

async fn borrower(slots: Pool, plan: u64, hold_ms: u64, start_ms: u64) -> Result<(), Error> {
    sleep(Duration::from_millis(start_ms)).await;
    match plan % 10 {
        // Give up while waiting or while the connection is being prepared.
        0 => {
            let _ = timeout(Duration::from_micros(hold_ms * 300), slots.get()).await;
            Ok(())
        }
        // Return it inside a "transaction" / with a cancelled query.
        1 => {
            let mut c = slots.get().await?;
            if let Some(conn) = c.conn_mut() {
                conn.dirty = true;
            }
            sleep(Duration::from_millis(hold_ms)).await;
            Ok(())
        }
        // Return it broken.
        2 => {
            let mut c = slots.get().await?;
            if let Some(conn) = c.conn_mut() {
                conn.broken = true;
            }
            Ok(())
        }
        // Panic while holding it.
        3 => {
            let _c = slots.get().await?;
            sleep(Duration::from_millis(hold_ms)).await;
            std::panic::panic_any(PANIC_MESSAGE);
        }
        // A short wait budget.
        4 => {
            let _c = slots.get_timeout(Duration::from_millis(hold_ms)).await?;
            sleep(Duration::from_millis(hold_ms)).await;
            Ok(())
        }
        // The ordinary borrower.
        _ => {
            let _c = slots.get().await?;
            sleep(Duration::from_millis(hold_ms)).await;
            Ok(())
        }
    }
}

async fn run(seed: u64, borrowers: usize, max_size: usize, resize_chaos: bool) -> Outcomes {
    quiet_deliberate_panics();
    let mut cfg = config(max_size);
    cfg.create_timeout = Duration::from_millis(30);
    cfg.recycle_timeout = Duration::from_millis(30);
    cfg.max_lifetime = Some(Duration::from_millis(400));
    let fake = Fake::with_seed(seed);
    *fake.create.lock().unwrap() = Gate::Random {
        percent: 5,
        max_ms: 3,
    };
    *fake.recycle.lock().unwrap() = Gate::Random {
        percent: 5,
        max_ms: 2,
    };
    *fake.reset.lock().unwrap() = Gate::Random {
        percent: 10,
        max_ms: 4,
    };
    let (slots, fake) = pool_with(cfg, fake);
    let mut rng = Rng::new(seed);
    let mut tasks = Vec::with_capacity(borrowers);
    let mut abort_at = Vec::new();
    // Spread arrivals so the queue stays long but drains well within the wait timeout.
    let window_ms = (borrowers as u64).max(1);
    for i in 0..borrowers {
        let plan = rng.next();
        let hold_ms = rng.below(8);
        let start_ms = rng.below(window_ms);
        let t = tokio::spawn(borrower(Arc::clone(&slots), plan, hold_ms, start_ms));
        // About one in ten is aborted from outside at a random moment.
        if rng.below(10) == 0 {
            abort_at.push((start_ms + rng.below(10), i));
        }
        tasks.push(t);
    }
    abort_at.sort();
    let aborter = {
        let handles: Vec<_> = abort_at
            .iter()
            .map(|&(at, i)| (at, tasks[i].abort_handle()))
            .collect();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for (at, h) in handles {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                h.abort();
            }
        })
    };
    let chaos = resize_chaos.then(|| {
        let slots = Arc::clone(&slots);
        tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ 0xABCD);
            for _ in 0..(window_ms / 20) {
                sleep(Duration::from_millis(20)).await;
                slots.resize(1 + rng.below(max_size as u64 * 2) as usize);
                assert_adds_up_loose(&slots);
            }
            slots.resize(max_size);
        })
    });
    let checker = {
        let slots = Arc::clone(&slots);
        tokio::spawn(async move {
            for _ in 0..(window_ms / 5) {
                sleep(Duration::from_millis(5)).await;
                if !resize_chaos {
                    assert_adds_up(&slots);
                }
            }
        })
    };
    let mut out = Outcomes::default();
    // Every borrower must finish (well within virtual time: no deadlock).
    let all = async {
        for t in tasks {
            match t.await {
                Ok(Ok(())) => out.ok += 1,
                Ok(Err(Error::Timeout(TimeoutKind::Wait))) => out.wait_timeouts += 1,
                Ok(Err(Error::Timeout(_))) => out.other_timeouts += 1,
                Ok(Err(Error::Backend(_))) => out.backend_errors += 1,
                Ok(Err(e)) => panic!("unexpected error {e:?}"),
                Err(e) if e.is_cancelled() => out.cancelled += 1,
                Err(e) if e.is_panic() => out.panicked += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    };
    timeout(Duration::from_secs(600), all)
        .await
        .expect("every borrower finishes");
    aborter.await.unwrap();
    if let Some(c) = chaos {
        c.await.unwrap();
    }
    checker.await.unwrap();
    // Background resets finish within the recycle timeout.
    sleep(Duration::from_secs(1)).await;
    assert_quiescent(&slots, &fake);
    // The counters saw at least what the borrowers saw (plan 0 hides its own outcomes).
    let st = slots.stats();
    assert!(st.acquires >= out.panicked as u64, "{st:?} {out:?}");
    assert!(st.acquires_waited <= st.acquires, "{st:?} {out:?}");
    assert!(
        st.wait_timeouts >= out.wait_timeouts as u64,
        "{st:?} {out:?}"
    );
    let other = st.create_timeouts + st.recycle_timeouts;
    assert!(other >= out.other_timeouts as u64, "{st:?} {out:?}");
    assert!(
        st.acquires_cancelled > 0,
        "plan 0 gives up while waiting: {st:?}"
    );
    // No permit lost: all max_size slots can be held at once, immediately.
    *fake.create.lock().unwrap() = Gate::Ok;
    *fake.recycle.lock().unwrap() = Gate::Ok;
    let mut held = Vec::new();
    for _ in 0..max_size {
        held.push(
            slots
                .get_timeout(Duration::ZERO)
                .await
                .expect("a free slot"),
        );
    }
    let extra = slots.get_timeout(Duration::ZERO).await;
    assert!(
        matches!(extra, Err(Error::Timeout(TimeoutKind::Wait))),
        "{extra:?}"
    );
    drop(held);
    assert_quiescent(&slots, &fake);
    out
}

/// While `resize` moves `max_size` around, size may exceed it until surplus comes back.
fn assert_adds_up_loose(slots: &Slots<Arc<Fake>>) {
    let s = slots.status();
    assert_eq!(s.size, s.idle + s.in_use, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_random_borrowers_over_four_slots() {
    let out = run(0x5EED, 10_000, 4, false).await;
    eprintln!("{out:?}");
    // The mix really exercised every path.
    assert!(out.ok > 5_000, "{out:?}");
    assert!(out.cancelled > 100, "{out:?}");
    assert!(out.panicked > 100, "{out:?}");
    assert!(out.backend_errors > 10, "{out:?}");
    assert!(out.wait_timeouts > 10, "{out:?}");
    assert!(out.other_timeouts > 0 || out.backend_errors > 0, "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn random_borrowers_under_many_seeds() {
    for seed in 1..=8 {
        run(seed, 1_500, 2 + (seed as usize % 3), false).await;
    }
}

#[tokio::test(start_paused = true)]
async fn random_borrowers_while_resizing() {
    for seed in 100..104 {
        run(seed, 2_000, 4, true).await;
    }
}

/// Real threads, real time: the mutex and the semaphore under true parallelism.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_borrowers_on_a_multi_thread_runtime() {
    quiet_deliberate_panics();
    let mut cfg = config(3);
    cfg.create_timeout = Duration::from_millis(200);
    cfg.recycle_timeout = Duration::from_millis(200);
    let (slots, fake) = pool_with(cfg, Fake::with_seed(7));
    *fake.create.lock().unwrap() = Gate::Random {
        percent: 5,
        max_ms: 1,
    };
    let mut rng = Rng::new(7);
    let mut tasks = Vec::new();
    for _ in 0..2_000 {
        let (plan, hold) = (rng.next(), rng.below(2));
        let slots = Arc::clone(&slots);
        tasks.push(tokio::spawn(async move {
            // Microsecond-scale holds in real time.
            let _ = borrower(slots, plan, hold, 0).await;
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        if i % 7 == 0 {
            t.abort();
        }
        let _ = t.await;
    }
    sleep(Duration::from_millis(300)).await;
    assert_quiescent(&slots, &fake);
    assert_eq!(slots.status().max_size, 3);
}
