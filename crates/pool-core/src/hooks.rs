//! Connection hooks: user code the pool runs on a new connection (`after_connect`), before
//! handing an idle one out (`before_acquire`) and when one comes back (`after_release`), as
//! sqlx's pool options and deadpool's hooks do.
//!
//! Below `slots` in the module chain: the slots run the hooks (generic over the connection
//! type, so the slot tests drive them with fake connections), the builder stores them. A hook
//! that fails or panics only costs its connection, never its slot: the panic is caught here,
//! around the call and around every poll of the future it returned.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A boxed, `Send` future borrowing for `'a`: what a hook or a [`PsqlPool::transaction`]
/// closure returns (`Box::pin(async move { ... })`).
///
/// [`PsqlPool::transaction`]: crate::PsqlPool::transaction
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a hook fails with: any error (`?` converts a [`pgwire_lite::Error`], a `String`
/// or a `&str` into it). The pool reports it as [`Error::Hook`](crate::Error::Hook).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A hook's result.
pub type HookResult<T> = std::result::Result<T, HookError>;

/// What `before_acquire` and `after_release` are told about the connection (sqlx's
/// `PoolConnectionMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionMetadata {
    /// How long the connection has been open.
    pub age: Duration,
    /// How long it sat idle in the pool before this checkout; zero in `after_release`.
    pub idle_for: Duration,
    /// How many borrowers had it before (0 for its first borrower).
    pub checkouts: u64,
}

impl ConnectionMetadata {
    pub(crate) fn new(age: Duration, idle_for: Duration, checkouts: u64) -> Self {
        ConnectionMetadata {
            age,
            idle_for,
            checkouts,
        }
    }
}

/// `after_connect`: runs once on every new connection.
pub(crate) type AfterConnect<C> =
    dyn for<'c> Fn(&'c mut C) -> BoxFuture<'c, HookResult<()>> + Send + Sync;

/// `before_acquire` / `after_release`: `Ok(false)` vetoes the connection.
pub(crate) type CheckHook<C> =
    dyn for<'c> Fn(&'c mut C, ConnectionMetadata) -> BoxFuture<'c, HookResult<bool>> + Send + Sync;

/// The hooks of one pool; each is optional.
pub(crate) struct Hooks<C> {
    pub(crate) after_connect: Option<Arc<AfterConnect<C>>>,
    pub(crate) before_acquire: Option<Arc<CheckHook<C>>>,
    pub(crate) after_release: Option<Arc<CheckHook<C>>>,
}

impl<C> Default for Hooks<C> {
    fn default() -> Self {
        Hooks {
            after_connect: None,
            before_acquire: None,
            after_release: None,
        }
    }
}

impl<C> Clone for Hooks<C> {
    fn clone(&self) -> Self {
        Hooks {
            after_connect: self.after_connect.clone(),
            before_acquire: self.before_acquire.clone(),
            after_release: self.after_release.clone(),
        }
    }
}

impl<C> fmt::Debug for Hooks<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Closures have nothing to show but whether they are there.
        f.debug_struct("Hooks")
            .field("after_connect", &self.after_connect.is_some())
            .field("before_acquire", &self.before_acquire.is_some())
            .field("after_release", &self.after_release.is_some())
            .finish()
    }
}

/// A hook panicked: its message (when the payload is a string), as the error's source.
#[derive(Debug)]
pub(crate) struct HookPanicked(pub(crate) String);

impl fmt::Display for HookPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.0)
    }
}

impl std::error::Error for HookPanicked {}

fn panicked(payload: Box<dyn Any + Send>) -> HookError {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("(a non-string payload)")
    };
    Box::new(HookPanicked(msg))
}

/// Polls a boxed future, turning a panic in any poll into an error (what futures-util's
/// `catch_unwind` does, without the dependency).
struct CatchUnwind<'a, T>(BoxFuture<'a, HookResult<T>>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = HookResult<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HookResult<T>> {
        let fut = &mut self.0;
        // The future is dropped right after a panic, never polled again, so whatever state the
        // panic left it in is not observed: that is what makes the assertion sound.
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(panicked(payload))),
        }
    }
}

/// Calls a hook and awaits its future; a panic in either becomes an `Err`.
pub(crate) async fn run<'a, T>(
    call: impl FnOnce() -> BoxFuture<'a, HookResult<T>>,
) -> HookResult<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(fut) => CatchUnwind(fut).await,
        Err(payload) => Err(panicked(payload)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_errors_whether_in_the_call_or_in_a_poll() {
        let ok = run(|| Box::pin(async { Ok(7) })).await;
        assert_eq!(ok.unwrap(), 7);
        let sync_panic: HookResult<()> = run(|| panic!("before the future")).await;
        assert_eq!(
            sync_panic.unwrap_err().to_string(),
            "panicked: before the future"
        );
        let poll_panic: HookResult<()> = run(|| {
            Box::pin(async {
                tokio::task::yield_now().await;
                let n = 3;
                panic!("in poll {n}")
            })
        })
        .await;
        assert_eq!(poll_panic.unwrap_err().to_string(), "panicked: in poll 3");
        let err: HookResult<()> = run(|| Box::pin(async { Err("refused".into()) })).await;
        assert_eq!(err.unwrap_err().to_string(), "refused");
    }
}
