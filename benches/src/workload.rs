//! pgbench's two built-in workloads, as SQL with bound parameters, and their random inputs.

use std::fmt;
use std::str::FromStr;

use pg_harness::Rng;

/// pgbench `-S` (select-only): one indexed point read.
pub const SELECT_ACCOUNT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
/// TPC-B-like step 1: `$1` delta, `$2` aid.
pub const UPDATE_ACCOUNT: &str =
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
/// TPC-B-like step 3: `$1` delta, `$2` tid.
pub const UPDATE_TELLER: &str =
    "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2";
/// TPC-B-like step 4: `$1` delta, `$2` bid.
pub const UPDATE_BRANCH: &str =
    "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2";
/// TPC-B-like step 5: `$1` tid, `$2` bid, `$3` aid, `$4` delta.
pub const INSERT_HISTORY: &str = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
     VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)";
/// Opens the TPC-B-like transaction (simple query protocol for every driver).
pub const BEGIN: &str = "BEGIN";
/// Closes it; pgbench's script says `END`, a synonym of `COMMIT`.
pub const END: &str = "END";

/// Which pgbench script a load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `pgbench -S`: [`SELECT_ACCOUNT`] with a random aid.
    Select,
    /// pgbench's default TPC-B-like transaction.
    Tpcb,
    /// `pgbench -C -S`: a new connection per transaction (startup, authentication, TLS when
    /// asked), one [`SELECT_ACCOUNT`] as an unnamed statement, then the connection is closed.
    /// What it measures is connection set-up.
    Connect,
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "select" => Ok(Workload::Select),
            "tpcb" => Ok(Workload::Tpcb),
            "connect" => Ok(Workload::Connect),
            other => Err(format!(
                "unknown workload {other:?}: expected `select`, `tpcb` or `connect`"
            )),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Select => "select",
            Workload::Tpcb => "tpcb",
            Workload::Connect => "connect",
        })
    }
}

/// The random inputs of one transaction, drawn as pgbench draws them
/// (`random(1, 100000 * :scale)` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Account, `1..=100_000 * scale`.
    pub aid: i32,
    /// Branch, `1..=scale`.
    pub bid: i32,
    /// Teller, `1..=10 * scale`.
    pub tid: i32,
    /// Balance change, `-5000..=5000`.
    pub delta: i32,
}

impl Params {
    /// The inputs of one transaction at `scale`, drawn from `rng` (a few instructions per
    /// draw, so the generator is not what is being measured).
    pub fn draw(rng: &mut Rng, scale: i32) -> Params {
        Params {
            aid: range(rng, 1, 100_000 * scale),
            bid: range(rng, 1, scale),
            tid: range(rng, 1, 10 * scale),
            delta: range(rng, -5000, 5000),
        }
    }
}

/// Uniform in `lo..=hi` (`lo <= hi`); the modulo bias is below 2^-32 for these ranges.
fn range(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    let span = (i64::from(hi) - i64::from(lo) + 1).max(1) as u64;
    (i64::from(lo) + (rng.next() % span) as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_stay_in_pgbench_ranges() {
        let mut rng = Rng::for_stream(3);
        let (mut min_aid, mut max_aid) = (i32::MAX, i32::MIN);
        for _ in 0..100_000 {
            let p = Params::draw(&mut rng, 2);
            assert!((1..=200_000).contains(&p.aid));
            assert!((1..=2).contains(&p.bid));
            assert!((1..=20).contains(&p.tid));
            assert!((-5000..=5000).contains(&p.delta));
            min_aid = min_aid.min(p.aid);
            max_aid = max_aid.max(p.aid);
        }
        // Both ends are reached in practice: the whole table is touched.
        assert!(min_aid < 100 && max_aid > 199_900, "{min_aid} {max_aid}");
    }

    #[test]
    fn clients_get_different_streams() {
        assert_ne!(Rng::for_stream(0).next(), Rng::for_stream(1).next());
    }

    #[test]
    fn workload_names_round_trip() {
        for w in [Workload::Select, Workload::Tpcb, Workload::Connect] {
            assert_eq!(w.to_string().parse::<Workload>(), Ok(w));
        }
        assert!("tpc-b".parse::<Workload>().unwrap_err().contains("tpc-b"));
    }
}
