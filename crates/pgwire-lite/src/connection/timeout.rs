//! Query timeouts: every operation runs through [`Connection::request`], which applies the
//! connection's time limit and records the outcome in the request state.
//!
//! When the limit elapses, the statement may still be running, may have finished, or may be
//! finishing while the CancelRequest travels. The response that is drained afterwards says
//! which, and the caller is told: [`TimeoutOutcome`].

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::Connection;
use super::cancel::CancelToken;
use crate::error::{Error, Result, TimeoutOutcome};

/// After a query timeout, how long the CancelRequest and the drain to ReadyForQuery may take
/// before the connection is given up: a healthy server answers a cancel in about a millisecond,
/// a hung one never does, and the caller should wait at most its timeout plus this.
const CANCEL_GRACE: Duration = Duration::from_millis(200);

impl Connection {
    /// A token that cancels this connection's running query from another task.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            peer: self.peer.clone(),
            process_id: self.process_id,
            secret_key: self.secret_key.clone(),
            tls: self.stream.cancel_tls(),
        }
    }

    /// Runs one operation under the query timeout. An I/O or protocol failure it returns marks
    /// the connection broken; a timeout cancels what it sent and drains the response.
    pub(super) async fn request<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let Some(limit) = self.query_timeout else {
            let r = op(self).await;
            return self.check(r);
        };
        let requests_before = self.state.seen.requests;
        match tokio::time::timeout(limit, op(self)).await {
            Ok(r) => self.check(r),
            Err(_) => {
                // Boxed: the rare path would otherwise add its cancel and drain futures to the
                // size of every request future.
                let outcome = Box::pin(self.after_timeout(requests_before)).await;
                tracing::warn!(
                    target: "pgwire_lite::query",
                    timeout_ms = limit.as_millis() as u64,
                    outcome = ?outcome,
                    "query timeout"
                );
                Err(Error::QueryTimeout(outcome))
            }
        }
    }

    /// Cancels and drains what a timed-out operation left, and says what became of it.
    ///
    /// The CancelRequest and the drain run side by side: a statement that finishes while the
    /// cancel travels is read as completed. The connection is kept only when both end within
    /// the grace: a cancel whose delivery was not confirmed could still arrive later and cancel
    /// the next borrower's statement.
    async fn after_timeout(&mut self, requests_before: u64) -> TimeoutOutcome {
        if self.state.seen.requests == requests_before && !self.has_pending() {
            // Nothing of this operation reached the server.
            return TimeoutOutcome::Cancelled;
        }
        if self.is_broken() {
            return TimeoutOutcome::Unknown;
        }
        if !self.has_pending() {
            return self.outcome();
        }
        let token = self.cancel_token();
        let (cancelled, drained) = both(
            tokio::time::timeout(CANCEL_GRACE, token.cancel_query()),
            tokio::time::timeout(CANCEL_GRACE, self.ensure_ready()),
        )
        .await;
        let cancelled = matches!(cancelled, Ok(Ok(())));
        let drained = drained.ok().map(|d| d.is_ok());
        let outcome = match drained {
            Some(true) => self.outcome(),
            _ => TimeoutOutcome::Unknown,
        };
        if !cancelled || drained != Some(true) {
            self.state
                .set_broken("the server did not answer the cancellation of a timed-out query");
        }
        outcome
    }

    /// The outcome of the latest request, from what its fully read response said.
    fn outcome(&self) -> TimeoutOutcome {
        let seen = self.state.seen;
        match (seen.errors, seen.completed) {
            // One Sync: an error rolls back the whole request (or aborts the transaction).
            (e, c) if e > 0 && (c == 0 || seen.syncs <= 1) => TimeoutOutcome::Cancelled,
            (e, _) if e > 0 => TimeoutOutcome::Unknown,
            (_, c) if c > 0 => TimeoutOutcome::Completed,
            // The statement itself was never executed (the operation was still preparing it).
            _ => TimeoutOutcome::Cancelled,
        }
    }
}

/// Runs two futures to completion side by side.
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}
