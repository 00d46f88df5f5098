//! Query timeouts: every operation runs through [`Connection::request`], which applies the
//! connection's time limit and records the outcome in the request state.

use std::time::Duration;

use super::Connection;
use super::cancel::CancelToken;
use crate::error::{Error, Result};

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
        match tokio::time::timeout(limit, op(self)).await {
            Ok(r) => self.check(r),
            Err(_) => {
                // The operation's future is gone; what it sent is still owed to us.
                if self.has_pending() && !self.is_broken() {
                    let token = self.cancel_token();
                    let cleanup = async {
                        token.cancel_query().await?;
                        self.ensure_ready().await
                    };
                    match tokio::time::timeout(CANCEL_GRACE, cleanup).await {
                        Ok(Ok(())) => {}
                        _ => self.state.set_broken(
                            "the server did not answer the cancellation of a timed-out query",
                        ),
                    }
                }
                Err(Error::Timeout(
                    "query_timeout elapsed; the query was cancelled",
                ))
            }
        }
    }
}
