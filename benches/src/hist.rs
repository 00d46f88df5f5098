//! A lock-free log-linear latency histogram (nanoseconds, 32 sub-buckets per power of two, so
//! within ~3 %), sharded by client task, plus the transaction and error counters.
//! Snapshots are subtracted to get one interval's numbers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for every u64 value.
const BUCKETS: usize = ((64 - SUB_BITS as usize) * SUB as usize) + 2 * SUB as usize;

fn bucket_of(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let exp = msb - SUB_BITS;
    let mantissa = v >> exp; // in SUB..2*SUB
    (exp as u64 * SUB + mantissa) as usize
}

/// Middle of the values that land in bucket `i` (the inverse of `bucket_of`).
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let exp = i / SUB - 1;
    let mantissa = i - exp * SUB;
    let lo = mantissa << exp;
    lo + (1u64 << exp) / 2
}

/// Transaction latencies and counts of one load, written by every client task concurrently.
///
/// Split into shards (one per client task, see [`Recorder::with_shards`]): with one shared set
/// of counters, every statement of every task did two atomic adds on cache lines both worker
/// threads write, a cost of the harness (not of the driver) that grew with the rate.
#[derive(Debug)]
pub struct Recorder {
    shards: Vec<Shard>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// One client task's counters, on cache lines of their own.
#[derive(Debug)]
#[repr(align(128))]
pub struct Shard {
    buckets: Box<[AtomicU64]>,
    txns: AtomicU64,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            txns: AtomicU64::new(0),
        }
    }

    /// One finished transaction and how long it took.
    pub fn record(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        if let Some(b) = self.buckets.get(bucket_of(ns)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.txns.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder with one shard.
    pub fn new() -> Recorder {
        Recorder::with_shards(1)
    }

    /// An empty recorder with `n` shards (at least one): give each client task its own.
    pub fn with_shards(n: usize) -> Recorder {
        Recorder {
            shards: (0..n.max(1)).map(|_| Shard::new()).collect(),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// The shard of client task `i` (shared round-robin beyond the shard count).
    pub fn shard(&self, i: usize) -> &Shard {
        &self.shards[i % self.shards.len()]
    }

    /// One finished transaction and how long it took, in the first shard.
    pub fn record(&self, latency: Duration) {
        self.shard(0).record(latency);
    }

    /// One failed transaction; the first message is kept for the report.
    pub fn error(&self, message: impl FnOnce() -> String) {
        if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(message);
            }
        }
    }

    /// The first error seen, if any.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// The counts so far, summed over the shards.
    pub fn snapshot(&self) -> Snapshot {
        let mut buckets = vec![0u64; BUCKETS];
        let mut txns = 0;
        for shard in &self.shards {
            for (sum, b) in buckets.iter_mut().zip(shard.buckets.iter()) {
                *sum += b.load(Ordering::Relaxed);
            }
            txns += shard.txns.load(Ordering::Relaxed);
        }
        Snapshot {
            buckets,
            txns,
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Counts at one instant, or (after [`Snapshot::since`]) over one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    buckets: Vec<u64>,
    /// Finished transactions.
    pub txns: u64,
    /// Failed transactions.
    pub errors: u64,
}

impl Snapshot {
    /// The interval from `earlier` to `self`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0)))
                .collect(),
            txns: self.txns.saturating_sub(earlier.txns),
            errors: self.errors.saturating_sub(earlier.errors),
        }
    }

    /// Adds another interval (e.g. the same driver's next round).
    pub fn merge(&mut self, other: &Snapshot) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.txns += other.txns;
        self.errors += other.errors;
    }

    /// Adds latencies measured elsewhere (pgbench's per-transaction log), in microseconds.
    pub fn add_micros(&mut self, micros: u64) {
        if self.buckets.len() < BUCKETS {
            self.buckets.resize(BUCKETS, 0);
        }
        if let Some(b) = self.buckets.get_mut(bucket_of(micros.saturating_mul(1000))) {
            *b += 1;
        }
        self.txns += 1;
    }

    /// The latency at quantile `q` (0..=1), `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_nanos(value_of(i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_within_three_percent() {
        let mut last = 0;
        for v in (0..200_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last && b < BUCKETS, "{v}");
            last = b;
            let back = value_of(b) as f64;
            assert!(
                (back - v as f64).abs() <= v as f64 * 0.032 + 0.5,
                "{v} -> {back}"
            );
        }
    }

    #[test]
    fn quantiles_of_an_interval() {
        let r = Recorder::new();
        for us in 1..=100u64 {
            r.record(Duration::from_micros(us));
        }
        let before = r.snapshot();
        for _ in 0..100 {
            r.record(Duration::from_millis(5));
        }
        r.error(|| "boom".into());
        r.error(|| "second".into());
        let all = r.snapshot();
        let p50 = all.quantile(0.5).unwrap();
        assert!((97..=103).contains(&p50.as_micros()), "{p50:?}");
        let late = all.since(&before);
        assert_eq!((late.txns, late.errors), (100, 2));
        let p50 = late.quantile(0.5).unwrap().as_micros();
        assert!((4850..=5150).contains(&p50), "{p50}");
        assert_eq!(r.first_error().as_deref(), Some("boom"));
        assert_eq!(Snapshot::default().quantile(0.5), None);
    }

    #[test]
    fn pgbench_micros_merge_with_recorded_nanos() {
        let mut s = Snapshot::default();
        s.add_micros(250);
        let r = Recorder::new();
        r.record(Duration::from_micros(250));
        let mut both = r.snapshot();
        both.merge(&s);
        assert_eq!(both.txns, 2);
        let p = both.quantile(1.0).unwrap().as_micros();
        assert!((243..=257).contains(&p), "{p}");
    }
}
