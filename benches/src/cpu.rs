//! CPU time of this process (the client side of a load) and of its waited-for children
//! (pgbench), through `getrusage`.

use std::time::Duration;

/// user + system CPU time used so far by this process, all threads.
pub fn self_cpu() -> Duration {
    usage(libc::RUSAGE_SELF)
}

/// user + system CPU time of the children this process has waited for.
pub fn children_cpu() -> Duration {
    usage(libc::RUSAGE_CHILDREN)
}

fn usage(who: libc::c_int) -> Duration {
    // SAFETY: `getrusage` only writes into the zero-initialised struct we pass; `rusage` is plain
    // old data, so all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid `who` constant and a valid, exclusive pointer to `ru`.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_loop_shows_up_as_cpu() {
        // Spin until 20 ms of CPU are accounted (the machine is shared: wall time says nothing),
        // giving up after 10 s of wall time.
        let before = self_cpu();
        let start = std::time::Instant::now();
        let mut x = 1u64;
        while self_cpu() - before < Duration::from_millis(20)
            && start.elapsed() < Duration::from_secs(10)
        {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
            }
        }
        assert!(self_cpu() - before >= Duration::from_millis(20));
    }
}
