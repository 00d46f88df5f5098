//! The cache of looked-up types, shared by the connections of a pool.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Type;

/// At most this many looked-up types are kept. A database has a few hundred user types at most;
/// the cap only bounds what a hostile server could make us keep. Beyond it, new types are still
/// resolved for the statement that needs them, just not remembered.
pub const MAX_CACHED_TYPES: usize = 10_000;

/// The types looked up in `pg_type` (enums, domains, composites, extension types...), by OID.
///
/// A [`Connection`](crate::Connection) has its own by default; a pool gives every connection it
/// opens the same one ([`Connection::set_type_cache`](crate::Connection::set_type_cache)), so
/// each type is looked up once per pool. OIDs are per database: share a cache only between
/// connections to the same database (or to replicas of it).
///
/// Built-in types never reach the cache: they are known without a lookup.
#[derive(Default)]
pub struct TypeCache {
    types: Mutex<HashMap<u32, Type>>,
    lookups: AtomicU64,
}

impl TypeCache {
    /// An empty cache.
    pub fn new() -> TypeCache {
        TypeCache::default()
    }

    /// The type with this OID, if it was looked up.
    pub fn get(&self, oid: u32) -> Option<Type> {
        self.lock().get(&oid).cloned()
    }

    /// The number of types kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no type was looked up yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many `pg_type` queries connections sharing this cache have run: a statement that
    /// mentions only built-in or already cached types adds none.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Forgets every type, e.g. after `ALTER TYPE ... ADD VALUE` or `DROP TYPE` and
    /// re-creation: the next statement that mentions one looks it up again.
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub(crate) fn count_lookup(&self) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn insert(&self, ty: Type) {
        let mut map = self.lock();
        if map.len() < MAX_CACHED_TYPES || map.contains_key(&ty.oid()) {
            map.insert(ty.oid(), ty);
        }
    }

    /// `ty` as the cache knows it: a looked-up type for an unresolved OID that was looked up,
    /// otherwise `ty` itself. Built-in types skip the lock.
    pub(crate) fn resolve(&self, ty: &Type) -> Type {
        if ty.is_unresolved() {
            if let Some(t) = self.get(ty.oid()) {
                return t;
            }
        }
        ty.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Type>> {
        // A panic while holding the lock cannot leave the map half-updated (each operation
        // is one HashMap call), so a poisoned lock is still good to use.
        self.types.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for TypeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeCache")
            .field("types", &self.len())
            .field("lookups", &self.lookups())
            .finish()
    }
}
