//! The ordered list of controllers an agent may report to (owner first) and the failover
//! rules over it: stay with the controller that last answered; when it cannot be reached, try
//! the next in order; while away from the preferred (first) controller, retry it every
//! [`PREFERRED_RETRY_EVERY`] reports; when an answer names a new owner, go to it.

use std::sync::Arc;

use engine::agents::wire::ControllerRef;

/// While reporting to a fallback, retry the preferred controller this often (in reports).
pub const PREFERRED_RETRY_EVERY: u32 = 10;

/// Controllers in order of preference with the agent's position in that order.
#[derive(Debug, Clone)]
pub struct ControllerSet {
    /// Shared: thousands of simulated sites hold the same few lists.
    list: Arc<[ControllerRef]>,
    current: usize,
    /// Reports accepted away from the preferred controller since it was last tried.
    away: u32,
    /// Bit `i`: the latest attempt on controller `i` failed. Cleared by a success there, and
    /// all of them every [`PREFERRED_RETRY_EVERY`] successes so a stale failure of a
    /// controller nobody retried does not stay reported forever.
    failed: u64,
    successes: u32,
}

impl ControllerSet {
    pub fn new(list: Arc<[ControllerRef]>) -> Self {
        Self {
            list,
            current: 0,
            away: 0,
            failed: 0,
            successes: 0,
        }
    }

    pub fn list(&self) -> &Arc<[ControllerRef]> {
        &self.list
    }

    /// The controller that answered last (or the preferred one before any answer).
    pub fn current(&self) -> Option<&ControllerRef> {
        self.list.get(self.current)
    }

    /// The order in which to try controllers for the next report: from the current one (or
    /// the preferred one when a retry is due), through the whole list, wrapping around.
    pub fn attempt_order(&self) -> impl Iterator<Item = usize> {
        let n = self.list.len();
        let start = if self.current != 0 && self.away >= PREFERRED_RETRY_EVERY {
            0
        } else {
            self.current
        };
        (0..n).map(move |k| (start + k) % n)
    }

    /// Controller `i` accepted a report.
    pub fn succeeded(&mut self, i: usize) {
        self.successes = self.successes.wrapping_add(1);
        if self.successes.is_multiple_of(PREFERRED_RETRY_EVERY) {
            self.failed = 0;
        }
        self.failed &= !bit(i);
        self.away = match i {
            0 => 0,
            _ if i == self.current => self.away.saturating_add(1),
            _ => 1,
        };
        self.current = i.min(self.list.len().saturating_sub(1));
    }

    /// Controller `i` could not be used.
    pub fn failed(&mut self, i: usize) {
        self.failed |= bit(i);
        if i == 0 && self.current != 0 {
            // The preferred retry failed: stay away another full period.
            self.away = 0;
        }
    }

    /// Whether the latest attempt on controller `i` failed.
    pub fn is_failed(&self, i: usize) -> bool {
        self.failed & bit(i) != 0
    }

    /// Whether `list` is the list held now (answers usually repeat it).
    pub fn same_list(&self, list: &[ControllerRef]) -> bool {
        *self.list == *list
    }

    /// Adopts the list of an answer given by controller `answered_by` (an index in the list
    /// held until now). An empty list is ignored: it would leave nowhere to report.
    pub fn adopt(&mut self, new: Arc<[ControllerRef]>, answered_by: usize) {
        if new.is_empty() || self.same_list(&new) {
            return;
        }
        let by = self.list.get(answered_by).map(|c| c.name.as_str());
        let mut failed = 0;
        for (j, c) in new.iter().enumerate() {
            if let Some(i) = self.list.iter().position(|o| o.name == c.name) {
                if self.is_failed(i) {
                    failed |= bit(j);
                }
            }
        }
        let owner_changed = self.list.first().map(|c| &c.name) != new.first().map(|c| &c.name);
        self.current = by
            .and_then(|name| new.iter().position(|c| c.name == name))
            .unwrap_or(0);
        self.failed = failed;
        self.away = if self.current == 0 {
            0
        } else if owner_changed {
            // A new owner: try it with the next report rather than in ten.
            PREFERRED_RETRY_EVERY
        } else {
            self.away
        };
        self.list = new;
    }
}

fn bit(i: usize) -> u64 {
    1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(names: &[&str]) -> Arc<[ControllerRef]> {
        names
            .iter()
            .map(|n| ControllerRef {
                name: n.to_string(),
                url: format!("http://{n}"),
            })
            .collect()
    }

    fn order(s: &ControllerSet) -> Vec<usize> {
        s.attempt_order().collect()
    }

    #[test]
    fn fails_over_in_order_and_stays_with_the_one_that_answers() {
        let mut s = ControllerSet::new(refs(&["a", "b", "c"]));
        assert_eq!(order(&s), vec![0, 1, 2]);
        s.failed(0);
        s.succeeded(1);
        assert_eq!(s.current().map(|c| c.name.as_str()), Some("b"));
        assert_eq!(order(&s), vec![1, 2, 0]);
        assert!(s.is_failed(0) && !s.is_failed(1));
    }

    #[test]
    fn the_preferred_controller_is_retried_every_ten_reports() {
        let mut s = ControllerSet::new(refs(&["a", "b"]));
        s.failed(0);
        s.succeeded(1);
        for _ in 1..PREFERRED_RETRY_EVERY {
            assert_eq!(order(&s)[0], 1);
            s.succeeded(1);
        }
        assert_eq!(order(&s), vec![0, 1], "retry due");
        s.failed(0);
        s.succeeded(1);
        assert_eq!(order(&s)[0], 1, "failed retry waits another period");
        let mut s2 = s.clone();
        for _ in 0..PREFERRED_RETRY_EVERY {
            s2.succeeded(1);
        }
        s2.succeeded(0);
        assert_eq!(order(&s2), vec![0, 1], "back home");
    }

    #[test]
    fn a_new_owner_is_tried_next() {
        let mut s = ControllerSet::new(refs(&["a", "b", "c"]));
        s.failed(0);
        s.succeeded(1);
        // b answers that c owns the subcloud now.
        s.adopt(refs(&["c", "b", "a"]), 1);
        assert_eq!(s.current().map(|c| c.name.as_str()), Some("b"));
        assert_eq!(order(&s)[0], 0, "c first");
        assert!(s.is_failed(2), "a's failure follows its name");
        // An empty list is ignored.
        s.adopt(refs(&[]), 0);
        assert_eq!(s.list().len(), 3);
    }

    #[test]
    fn an_empty_list_yields_no_attempts() {
        let s = ControllerSet::new(refs(&[]));
        assert_eq!(order(&s), Vec::<usize>::new());
        assert!(s.current().is_none());
        let mut s = s;
        s.succeeded(5);
        s.failed(99);
    }
}
