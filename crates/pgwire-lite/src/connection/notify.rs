//! Waiting for a notification on an idle connection, without sending anything.

use super::{Connection, Notification};
use crate::error::{Error, Result};
use crate::protocol::backend::{self, BackendMessage};

impl Connection {
    /// The oldest notification not yet taken: from the queue if one arrived with an earlier
    /// response, else the next one the server sends, waiting as long as it takes (the query
    /// timeout does not apply: nothing is asked of the server). A request a dropped future
    /// left unanswered is drained first.
    ///
    /// Cancel-safe: frames are taken from the read buffer whole and a notification is queued
    /// before this returns it, so dropping the future loses nothing; the next call (or
    /// [`take_notifications`](Self::take_notifications)) sees what arrived meanwhile. Notices
    /// and parameter changes that arrive are handled as usual.
    ///
    /// # Errors
    /// The connection's failure ([`Error::is_closed`]): the server closed it (a restart,
    /// `pg_terminate_backend`), or it sent something other than an asynchronous message.
    pub async fn wait_for_notification(&mut self) -> Result<Notification> {
        loop {
            if let Some(n) = self.notifications.pop_front() {
                return Ok(n);
            }
            self.ensure_ready().await?;
            let frame = self.read_frame().await?;
            if backend::is_async(frame[0]) {
                self.handle_async(&frame)?;
                continue;
            }
            // Nothing is owed to an idle connection but the server's goodbye: a FATAL error
            // (57P01 on pg_terminate_backend or shutdown), which `db_error` turns into a
            // broken connection.
            let e = match backend::decode(&frame) {
                Ok(BackendMessage::ErrorResponse(f)) => self.db_error(&f),
                _ => Error::protocol("the server sent a response while no request was pending"),
            };
            self.state
                .set_broken("the server sent a message to an idle connection");
            return Err(e);
        }
    }

    /// The oldest queued notification, without waiting or reading the socket.
    pub fn next_notification(&mut self) -> Option<Notification> {
        self.notifications.pop_front()
    }
}
