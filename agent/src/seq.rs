//! Report sequence numbers. The controller refuses a report whose `seq` is not above the last
//! one it accepted, and it remembers across agent restarts, so an agent starts from the wall
//! clock in milliseconds (ahead of any count it could have reached at one report per
//! interval) and never goes backwards even when the clock does.

/// Hands out strictly increasing sequence numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqGen {
    last: u64,
}

impl SeqGen {
    /// Continues after `last`, the highest seq used before (persisted by a real agent).
    pub fn resume(last: u64) -> Self {
        Self { last }
    }

    /// The next seq: the clock, unless the clock is not above the last one used.
    pub fn next(&mut self, now_ms: u64) -> u64 {
        let s = now_ms.max(self.last.saturating_add(1));
        self.last = s;
        s
    }

    /// The highest seq handed out so far (0 if none).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_follows_the_clock_and_never_repeats() {
        let mut g = SeqGen::default();
        assert_eq!(g.next(1_000), 1_000);
        assert_eq!(g.next(1_000), 1_001, "same millisecond");
        assert_eq!(g.next(500), 1_002, "clock went backwards");
        assert_eq!(g.next(5_000), 5_000);
    }

    #[test]
    fn seq_stays_monotonic_across_a_restart_with_the_clock_behind() {
        let mut before = SeqGen::default();
        let used: Vec<u64> = (0..5).map(|i| before.next(10_000 + i)).collect();
        // The restarted agent loads the persisted last seq; its clock is now behind.
        let mut after = SeqGen::resume(before.last());
        let next = after.next(9_000);
        assert!(
            used.iter().all(|&s| next > s),
            "{next} reuses or goes below {used:?}"
        );
        assert_eq!(
            SeqGen::resume(u64::MAX).next(1),
            u64::MAX,
            "saturates, never wraps"
        );
    }
}
