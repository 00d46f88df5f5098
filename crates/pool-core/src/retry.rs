//! [`PsqlPool::transaction`]: run a closure in a transaction, retrying it when PostgreSQL
//! asks for a retry (serialization failure 40001, deadlock 40P01).

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hooks::BoxFuture;
use crate::pool::PsqlPool;
use crate::transaction::{Transaction, TransactionOptions};

/// How [`PsqlPool::transaction_with`] retries: at most `attempts` runs in all, sleeping
/// between them a random time in `[d/2, d]` where `d = base_delay * 2^(run - 1)`, capped at
/// `max_delay` (jittered, so two transactions that collided do not collide again in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 10 ms base delay, 1 s cap.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Runs in all, the first included (at least 1: 1 means no retry).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The delay before the first retry, doubled for each one after it.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest delay between two runs.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Runs in all, the first included.
    pub(crate) fn attempts_allowed(&self) -> u32 {
        self.attempts
    }

    /// The sleep after failed run number `run` (1-based).
    pub(crate) fn delay(&self, run: u32) -> Duration {
        let factor = 1u32 << (run - 1).min(20);
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = full / 2;
        // A fresh RandomState is randomly keyed: enough randomness for jitter without a
        // dependency.
        let r = RandomState::new().hash_one(run);
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if nanos == 0 { 0 } else { r % (nanos + 1) })
    }
}

/// What PostgreSQL reports when running the same transaction again may succeed.
fn retryable(e: &Error) -> bool {
    e.is_serialization_failure() || e.is_deadlock()
}

impl PsqlPool {
    /// Runs `f` in a transaction on one borrowed connection and commits it, retrying the
    /// whole transaction on a serialization failure (40001) or deadlock (40P01), raised by a
    /// statement or by the COMMIT, with the default [`RetryPolicy`] (5 runs). Any other
    /// error is returned at once, the transaction rolled back. Returns `f`'s value.
    ///
    /// `f` may run several times, so it must not have effects outside the transaction that
    /// cannot be repeated. It returns a boxed future (a closure cannot return a future that
    /// borrows its argument otherwise on stable Rust):
    ///
    /// ```no_run
    /// # async fn f(pool: pool_core::PsqlPool) -> pool_core::Result<()> {
    /// use pool_core::{IsolationLevel, RetryPolicy, TransactionOptions};
    ///
    /// let balance: i64 = pool
    ///     .transaction_with(
    ///         TransactionOptions::new().isolation_level(IsolationLevel::Serializable),
    ///         RetryPolicy::default().attempts(10),
    ///         |tx| {
    ///             Box::pin(async move {
    ///                 tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[])
    ///                     .await?;
    ///                 let row = tx.query_one("SELECT balance FROM accounts WHERE id = 1", &[]).await?;
    ///                 Ok(row.get(0))
    ///             })
    ///         },
    ///     )
    ///     .await?;
    /// # let _ = balance; Ok(()) }
    /// ```
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'a, 'c> FnMut(&'a mut Transaction<'c>) -> BoxFuture<'a, Result<T>>,
    {
        self.transaction_with(TransactionOptions::default(), RetryPolicy::default(), f)
            .await
    }

    /// [`transaction`](Self::transaction) with the transaction's modes (isolation level,
    /// read-only, deferrable) and the retry policy given.
    ///
    /// # Errors
    /// The error of the last run; the pool's own errors (borrowing the connection) at once.
    pub async fn transaction_with<T, F>(
        &self,
        options: TransactionOptions,
        retry: RetryPolicy,
        mut f: F,
    ) -> Result<T>
    where
        F: for<'a, 'c> FnMut(&'a mut Transaction<'c>) -> BoxFuture<'a, Result<T>>,
    {
        let mut conn = self.connection().await?;
        let mut run = 1;
        loop {
            let result = async {
                let mut tx = conn.build_transaction().options(options).start().await?;
                let value = f(&mut tx).await?;
                tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Err(e) if retryable(&e) && run < retry.attempts => {
                    tokio::time::sleep(retry.delay(run)).await;
                    run += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_jittered_and_capped() {
        let p = RetryPolicy::default()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(300));
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d2 = p.delay(2);
            assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200));
            let d9 = p.delay(40);
            assert!(d9 >= Duration::from_millis(150) && d9 <= Duration::from_millis(300));
        }
        assert_eq!(RetryPolicy::default().attempts(0).attempts, 1);
        assert_eq!(
            RetryPolicy::default().base_delay(Duration::ZERO).delay(3),
            Duration::ZERO
        );
    }
}
