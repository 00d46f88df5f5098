//! No-op connection managers: with nothing to create or check, a benchmark of acquire + release
//! measures the pool's own bookkeeping only (deadpool's `benches/managed.rs` idea).

use std::convert::Infallible;

/// deadpool manager whose objects are `()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopDeadpool;

impl deadpool::managed::Manager for NoopDeadpool {
    type Type = ();
    type Error = Infallible;

    async fn create(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn recycle(
        &self,
        _obj: &mut (),
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

/// bb8 manager whose connections are `()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopBb8;

impl bb8::ManageConnection for NoopBb8 {
    type Connection = ();
    type Error = Infallible;

    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn is_valid(&self, _conn: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut ()) -> bool {
        false
    }
}
