//! Cancelling a running query from outside the connection.
//!
//! PostgreSQL cancels through a separate connection that carries a CancelRequest with the
//! backend's process id and secret key. The server closes that connection once it has signalled
//! the backend; [`CancelToken::cancel_query`] waits for that close, so when it returns the signal
//! has been delivered. The cancelled query then ends with SQLSTATE 57014 and its ReadyForQuery;
//! a backend that was already idle ignores the signal, so the connection is safe to reuse after
//! that ReadyForQuery (the connection's drain takes care of it).

use std::fmt;

use super::transport::Peer;
use crate::error::Result;
use crate::protocol::frontend;

/// What is needed to cancel a connection's running query. Cheap to clone and `Send`, so it can
/// be handed to another task.
#[derive(Clone)]
pub struct CancelToken {
    pub(crate) peer: Peer,
    pub(crate) process_id: i32,
    pub(crate) secret_key: Box<[u8]>,
    /// The TLS plan and host name when the connection used TLS: the CancelRequest then goes
    /// over TLS too, with the same verification, as libpq 17's PQcancelCreate sends it (the
    /// older PQcancel always sent it in plain text).
    pub(crate) tls: Option<(std::sync::Arc<super::tls::TlsPlan>, String)>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key lets anyone cancel this backend's queries: never printed.
        f.debug_struct("CancelToken")
            .field("peer", &self.peer)
            .field("process_id", &self.process_id)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    /// The backend process whose query this token cancels.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// Sends a CancelRequest to the address the connection is connected to and waits until the
    /// server closes the cancel connection. Success means the request was delivered, not that a
    /// query was running.
    pub async fn cancel_query(&self) -> Result<()> {
        let mut buf = bytes::BytesMut::with_capacity(16 + self.secret_key.len());
        frontend::cancel_request(self.process_id, &self.secret_key, &mut buf)?;
        let mut stream = self.peer.open(self.tls.as_ref()).await?;
        stream.write_all(&buf).await?;
        stream.read_to_close().await?;
        Ok(())
    }
}
