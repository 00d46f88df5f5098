//! Shared pieces of psqlpool's benches: the pgbench workloads, the peer drivers they run through,
//! a lock-free latency histogram, CPU accounting and the no-op pool managers of `pool_overhead`.
//!
//! Nothing here is published; the peers (tokio-postgres, deadpool-postgres, bb8-postgres, sqlx)
//! are dependencies of this package only.

#![deny(missing_docs)]

pub mod cpu;
pub mod drivers;
pub mod hist;
pub mod noop;
pub mod pair;
pub mod pgbench;
pub mod schema;
pub mod target;
pub mod tls;
pub mod wide;
pub mod workload;
