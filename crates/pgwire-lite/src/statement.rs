//! Prepared statements and the per-connection statement cache.
//!
//! The cache maps SQL text to a named server-side statement with its parameter and column
//! types. It is bounded: when full, the least recently used entry is evicted and its name is queued
//! for a `Close` that rides along with the next request (no extra round trip). Names are never
//! reused (`pwl<tag>_1`, `pwl<tag>_2`, ...), so a statement whose Parse outcome was lost to a
//! cancelled future can never collide with a later one; the random per-connection tag keeps
//! them apart from statements the user PREPAREs by name on the same session.

use std::collections::HashMap;
use std::sync::Arc;

use crate::row::Column;
use crate::types::Type;

/// Default number of statements cached per connection (sqlx uses 100, pgx 512).
pub const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 256;

/// A statement prepared on the server.
#[derive(Debug)]
pub struct Statement {
    pub(crate) name: Box<str>,
    pub(crate) params: Box<[Type]>,
    pub(crate) columns: Option<Arc<[Column]>>,
}

impl Statement {
    /// The server-side name ("" for the unnamed statement).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameter types, as the server inferred them.
    pub fn params(&self) -> &[Type] {
        &self.params
    }

    /// The result columns; empty for a statement that returns no rows.
    pub fn columns(&self) -> &[Column] {
        self.columns.as_deref().unwrap_or(&[])
    }
}

struct Entry {
    stmt: Arc<Statement>,
    last_used: u64,
}

/// The bounded LRU cache of named statements.
pub(crate) struct StatementCache {
    map: HashMap<Box<str>, Entry>,
    capacity: usize,
    tick: u64,
    next_id: u64,
    /// Names evicted but not yet closed on the server.
    to_close: Vec<Box<str>>,
    /// How many of `to_close` sit in the write buffer: they leave the list only once the
    /// request carrying their Close was written, so a request abandoned before it went out
    /// (a client-side encoding error) does not lose them.
    closes_in_buf: usize,
    /// A random per-connection tag in every name, so that names cannot collide by accident with
    /// statements a user PREPAREs on the same session.
    tag: u32,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize) -> Self {
        StatementCache {
            map: HashMap::new(),
            capacity,
            tick: 0,
            next_id: 0,
            to_close: Vec::new(),
            closes_in_buf: 0,
            tag: random_tag(),
        }
    }

    /// Changes the capacity, evicting least recently used entries beyond it.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_down_to(capacity);
    }

    fn evict_down_to(&mut self, len: usize) {
        while self.map.len() > len {
            // O(n) scan on eviction only; the hit path stays a hash lookup.
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.invalidate(&oldest);
        }
    }

    pub(crate) fn get(&mut self, sql: &str) -> Option<Arc<Statement>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(sql).map(|e| {
            e.last_used = tick;
            e.stmt.clone()
        })
    }

    /// A fresh statement name: `pwl<tag>_<n>`, never reused on this connection.
    pub(crate) fn next_name(&mut self) -> Box<str> {
        self.next_id += 1;
        self.name_of(self.next_id)
    }

    /// The name of the `n`th statement of this cache.
    fn name_of(&self, n: u64) -> Box<str> {
        format!("pwl{:08x}_{n}", self.tag).into()
    }

    /// Remembers a prepared statement, evicting the least recently used one when full. With a
    /// capacity of 0 nothing is kept and the statement is queued for closing at once.
    pub(crate) fn insert(&mut self, sql: &str, stmt: Arc<Statement>) {
        if self.capacity == 0 {
            self.to_close.push(stmt.name.clone());
            return;
        }
        self.evict_down_to(self.capacity - 1);
        self.tick += 1;
        if let Some(old) = self.map.insert(
            sql.into(),
            Entry {
                stmt,
                last_used: self.tick,
            },
        ) {
            self.to_close.push(old.stmt.name.clone());
        }
    }

    /// Replaces the entry for `sql` with the same server statement described better (its types
    /// looked up), without closing anything.
    pub(crate) fn replace(&mut self, sql: &str, stmt: Statement) {
        if let Some(e) = self.map.get_mut(sql) {
            e.stmt = Arc::new(stmt);
        }
    }

    /// Drops the entry for `sql` (its plan went stale) and queues it for closing.
    pub(crate) fn invalidate(&mut self, sql: &str) {
        if let Some(e) = self.map.remove(sql) {
            self.to_close.push(e.stmt.name.clone());
        }
    }

    /// Forgets everything without closing: the server already dropped the statements
    /// (DISCARD ALL, DEALLOCATE ALL).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.to_close.clear();
        self.closes_in_buf = 0;
    }

    /// Names to close with the next request; [`closes_written`](Self::closes_written) must
    /// follow once their Closes are in the write buffer.
    pub(crate) fn to_close(&self) -> &[Box<str>] {
        &self.to_close
    }

    /// The Closes for every name in [`to_close`](Self::to_close) are in the write buffer.
    pub(crate) fn closes_written(&mut self) {
        self.closes_in_buf = self.to_close.len();
    }

    /// The request carrying the Closes was written: those names are closed (or will be, by a
    /// server that then answers CloseComplete).
    pub(crate) fn closes_sent(&mut self) {
        let n = std::mem::take(&mut self.closes_in_buf).min(self.to_close.len());
        self.to_close.drain(..n);
    }

    /// The write buffer was discarded unsent: its Closes must go with a later request.
    pub(crate) fn closes_unsent(&mut self) {
        self.closes_in_buf = 0;
    }

    pub(crate) fn has_to_close(&self) -> bool {
        !self.to_close.is_empty()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.map.values().map(|e| &*e.stmt.name)
    }
}

/// A tag from the OS's random source; the clock if that fails (uniqueness against a user's own
/// names is all it is for, not secrecy).
fn random_tag() -> u32 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_ok() {
        return u32::from_ne_bytes(b);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(c: &mut StatementCache) -> Arc<Statement> {
        Arc::new(Statement {
            name: c.next_name(),
            params: Box::new([]),
            columns: None,
        })
    }

    #[test]
    fn lru_eviction_queues_close() {
        let mut c = StatementCache::new(2);
        let a = stmt(&mut c);
        c.insert("a", a);
        let b = stmt(&mut c);
        c.insert("b", b);
        assert!(c.get("a").is_some()); // a is now more recent than b
        let d = stmt(&mut c);
        c.insert("d", d);
        assert_eq!(c.len(), 2);
        assert!(c.get("b").is_none());
        assert_eq!(c.to_close(), &[c.name_of(2)]);
        c.closes_written();
        c.closes_sent();
        assert!(!c.has_to_close());
    }

    #[test]
    fn names_never_repeat_and_invalidate_closes() {
        let mut c = StatementCache::new(4);
        let a = stmt(&mut c);
        c.insert("a", a);
        c.invalidate("a");
        let a2 = stmt(&mut c);
        assert_eq!(a2.name, c.name_of(2));
        assert_eq!(c.to_close(), &[c.name_of(1)]);
        c.insert("a", a2);
        c.clear();
        assert_eq!(c.len(), 0);
        assert!(!c.has_to_close());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut c = StatementCache::new(0);
        let a = stmt(&mut c);
        c.insert("a", a);
        assert!(c.get("a").is_none());
        assert!(c.has_to_close());
    }

    #[test]
    fn closes_survive_an_unsent_request() {
        let mut c = StatementCache::new(1);
        let a = stmt(&mut c);
        c.insert("a", a);
        let b = stmt(&mut c);
        c.insert("b", b);
        c.closes_written();
        c.closes_unsent();
        c.closes_sent();
        assert_eq!(c.to_close(), &[c.name_of(1)]);
        c.closes_written();
        c.closes_sent();
        assert!(!c.has_to_close());
    }

    #[test]
    fn names_carry_a_per_connection_tag() {
        let mut a = StatementCache::new(1);
        let mut b = StatementCache::new(1);
        let (na, nb) = (a.next_name(), b.next_name());
        assert!(na.starts_with("pwl") && na.ends_with("_1"), "{na}");
        // 2^-32 odds of a false failure.
        assert_ne!(na, nb);
    }
}
