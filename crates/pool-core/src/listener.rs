//! [`PgListener`]: LISTEN/NOTIFY on a dedicated connection that reconnects by itself.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pgwire_lite::{Config, Connection, Notification};

use crate::error::{Error, Result};
use crate::ident;
use crate::pool::PsqlPool;
use crate::retry::RetryPolicy;

/// What [`PgListener::recv`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerEvent {
    /// A `NOTIFY` on one of the channels listened to.
    Notification(Notification),
    /// The connection was lost and a new one now listens on every channel again.
    /// Notifications sent while no connection listened are lost for good (PostgreSQL keeps
    /// none for a session that is gone): resynchronise from the tables. Every notification
    /// sent after this event is delivered.
    Gap {
        /// Why the previous connection was lost (the error's message).
        cause: String,
    },
}

/// LISTEN/NOTIFY on its own connection (not one of the pool's: a listener holds its
/// connection for as long as it lives).
///
/// It reconnects by itself when its connection fails (server restart, `pg_terminate_backend`,
/// network error): with jittered exponential backoff (100 ms doubling to 5 s, forever by
/// default; see [`set_reconnect_policy`](Self::set_reconnect_policy)), LISTENing on every
/// channel again, then yielding [`ListenerEvent::Gap`]. Errors that another attempt would
/// only repeat (a wrong password, a missing database) are returned instead; the next call
/// tries again.
///
/// Notifications are read only while [`recv`](Self::recv) (or the
/// [`Stream`](futures_core::Stream) of [`into_stream`](Self::into_stream)) waits; meanwhile
/// the server buffers them (up to its 8 GB queue, `max_notify_queue_pages`).
///
/// ```no_run
/// # async fn f(pool: pool_core::PsqlPool) -> pool_core::Result<()> {
/// use pool_core::ListenerEvent;
///
/// let mut listener = pool.listener().await?;
/// listener.listen("jobs").await?;
/// loop {
///     match listener.recv().await? {
///         ListenerEvent::Notification(n) => println!("{}: {}", n.channel, n.payload),
///         ListenerEvent::Gap { .. } => { /* reload what may have changed */ }
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct PgListener {
    config: Config,
    conn: Option<Connection>,
    /// Channel names as given (unquoted); every one is LISTENed on each new connection.
    channels: BTreeSet<String>,
    reconnect: RetryPolicy,
    /// A connection was lost since the last event: the cause, until a `Gap` reports it.
    gap: Option<String>,
}

impl fmt::Debug for PgListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Config`'s Debug redacts the password.
        f.debug_struct("PgListener")
            .field("config", &self.config)
            .field("connected", &self.conn.is_some())
            .field("channels", &self.channels)
            .finish()
    }
}

impl PsqlPool {
    /// A [`PgListener`] connected with the pool's settings, on a connection of its own (it
    /// does not count against the pool's size).
    pub async fn listener(&self) -> Result<PgListener> {
        PgListener::connect(&self.config()).await
    }
}

/// Connect errors worth another attempt: the server is (re)starting, unreachable, or full.
fn transient(e: &Error) -> bool {
    match e {
        Error::Backend(b) => match b.code() {
            None => b.is_closed() || b.is_timeout(),
            Some(code) => code.starts_with("57") || code.starts_with("08") || code == "53300",
        },
        _ => false,
    }
}

impl PgListener {
    /// Opens the listener's connection.
    ///
    /// # Errors
    /// The connection's error; nothing is retried here.
    pub async fn connect(config: &Config) -> Result<PgListener> {
        let conn = Connection::connect(config).await?;
        Ok(PgListener {
            config: config.clone(),
            conn: Some(conn),
            channels: BTreeSet::new(),
            reconnect: RetryPolicy::default()
                .attempts(u32::MAX)
                .base_delay(Duration::from_millis(100))
                .max_delay(Duration::from_secs(5)),
            gap: None,
        })
    }

    /// How reconnecting waits between attempts, and how many it makes before
    /// [`recv`](Self::recv) returns the last connect error.
    pub fn set_reconnect_policy(&mut self, policy: RetryPolicy) {
        self.reconnect = policy;
    }

    /// `LISTEN "channel"`: the name is quoted as given (case kept). Listening on a channel
    /// already listened to does nothing more.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an empty name, one longer than 63 bytes or with a NUL byte
    /// (nothing is sent). A connection that cannot be re-established: the channel is kept
    /// and LISTENed when a later call reconnects.
    pub async fn listen(&mut self, channel: &str) -> Result<()> {
        let sql = format!("LISTEN {}", ident::quote("channel", channel)?);
        let added = self.channels.insert(channel.to_owned());
        let r = self.run(&sql).await;
        if r.as_ref().is_err_and(|e| !transient(e)) && added {
            self.channels.remove(channel);
        }
        r
    }

    /// `UNLISTEN "channel"`. Notifications of the channel already received stay queued.
    pub async fn unlisten(&mut self, channel: &str) -> Result<()> {
        let sql = format!("UNLISTEN {}", ident::quote("channel", channel)?);
        self.channels.remove(channel);
        self.run(&sql).await
    }

    /// `UNLISTEN *`.
    pub async fn unlisten_all(&mut self) -> Result<()> {
        self.channels.clear();
        self.run("UNLISTEN *").await
    }

    /// The channels listened to, as given.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.channels.iter().map(String::as_str)
    }

    /// The backend process id of the current connection (e.g. to find it in
    /// `pg_stat_activity`); `None` while disconnected.
    pub fn backend_pid(&self) -> Option<i32> {
        self.conn.as_ref().map(Connection::backend_pid)
    }

    /// The next notification, or a [`ListenerEvent::Gap`] after a reconnect. Waits as long
    /// as it takes; reconnects as needed.
    ///
    /// Cancel-safe: a notification already read stays queued for the next call, and a
    /// reconnect interrupted by dropping the future is started again by the next call.
    ///
    /// # Errors
    /// A connect error that another attempt would only repeat, or the last one once the
    /// reconnect policy's attempts are spent.
    pub async fn recv(&mut self) -> Result<ListenerEvent> {
        loop {
            self.connected().await?;
            // A gap is reported only once every channel is listened again, so whatever the
            // caller re-reads after it cannot miss a later notification.
            if let Some(cause) = self.gap.take() {
                return Ok(ListenerEvent::Gap { cause });
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            match conn.wait_for_notification().await {
                Ok(n) => return Ok(ListenerEvent::Notification(n)),
                Err(e) => self.lost(&e),
            }
        }
    }

    /// Notifications already received, without waiting; `None` when none is queued.
    pub fn try_recv(&mut self) -> Option<Notification> {
        self.conn.as_mut().and_then(Connection::next_notification)
    }

    /// The listener as a [`Stream`](futures_core::Stream) of [`recv`](Self::recv) results;
    /// it never ends by itself.
    pub fn into_stream(self) -> ListenerStream {
        ListenerStream {
            next: Some(Box::pin(next_event(self))),
        }
    }

    /// Runs a LISTEN/UNLISTEN, reconnecting first if needed. A connection lost while it runs
    /// is reconnected, which LISTENs on `self.channels` again: that already accounts for it.
    async fn run(&mut self, sql: &str) -> Result<()> {
        let conn = self.connected().await?;
        match conn.batch_execute(sql).await {
            Ok(()) => Ok(()),
            Err(e) if conn.is_broken() => {
                self.lost(&e);
                self.connected().await.map(|_| ())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn lost(&mut self, e: &pgwire_lite::Error) {
        tracing::warn!(target: "pool_core::listener", error = %e, "listener connection lost; reconnecting");
        self.conn = None;
        self.gap.get_or_insert_with(|| e.to_string());
    }

    /// The live connection, reconnecting (with backoff) if it is gone.
    async fn connected(&mut self) -> Result<&mut Connection> {
        if self.conn.as_ref().is_some_and(Connection::is_broken) {
            self.conn = None;
            self.gap
                .get_or_insert_with(|| "the connection failed".to_owned());
        }
        if self.conn.is_none() {
            let mut run = 1;
            loop {
                match self.open().await {
                    Ok(conn) => {
                        if self.gap.is_some() {
                            tracing::info!(
                                target: "pool_core::listener",
                                attempts = run,
                                channels = self.channels.len(),
                                "listener reconnected"
                            );
                        }
                        self.conn = Some(conn);
                        break;
                    }
                    Err(e) if transient(&e) && run < self.reconnect.attempts_allowed() => {
                        tracing::debug!(target: "pool_core::listener", attempt = run, error = %e, "listener reconnect failed; retrying");
                        tokio::time::sleep(self.reconnect.delay(run)).await;
                        run = run.saturating_add(1);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.conn
            .as_mut()
            .ok_or(Error::Backend(pgwire_lite::Error::Closed(
                "the listener's connection is gone",
            )))
    }

    /// A new connection that listens on every channel.
    async fn open(&self) -> Result<Connection> {
        let mut conn = Connection::connect(&self.config).await?;
        if !self.channels.is_empty() {
            let mut sql = String::new();
            for channel in &self.channels {
                sql.push_str(&format!("LISTEN {}; ", ident::quote("channel", channel)?));
            }
            conn.batch_execute(&sql).await?;
        }
        Ok(conn)
    }
}

type NextEvent = Pin<Box<dyn Future<Output = (PgListener, Result<ListenerEvent>)> + Send>>;

async fn next_event(mut listener: PgListener) -> (PgListener, Result<ListenerEvent>) {
    let event = listener.recv().await;
    (listener, event)
}

/// A [`PgListener`] as a [`Stream`](futures_core::Stream) of events, from
/// [`PgListener::into_stream`]. Each item is what [`PgListener::recv`] returns.
pub struct ListenerStream {
    next: Option<NextEvent>,
}

impl fmt::Debug for ListenerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerStream").finish_non_exhaustive()
    }
}

impl futures_core::Stream for ListenerStream {
    type Item = Result<ListenerEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(next) = self.next.as_mut() else {
            return Poll::Ready(None);
        };
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((listener, event)) => {
                self.next = Some(Box::pin(next_event(listener)));
                Poll::Ready(Some(event))
            }
        }
    }
}
