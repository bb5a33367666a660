//! Login throttling: failed attempts are counted per client address and per user name in a
//! sliding window; past the limit, logins are refused (without checking the password) until
//! the oldest failure leaves the window. In memory, per controller process.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits for one key kind.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max_failures: usize,
    pub window: Duration,
}

/// Both limits.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub per_address: Limit,
    pub per_user: Limit,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            // A NOC behind one NAT address has many users: allow more per address.
            per_address: Limit {
                max_failures: 20,
                window: Duration::from_secs(10 * 60),
            },
            per_user: Limit {
                max_failures: 5,
                window: Duration::from_secs(15 * 60),
            },
        }
    }
}

/// Keys tracked at most; beyond this the stalest are dropped (bounds memory under a spray).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
struct Window {
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Window {
    fn prune(&mut self, key: &str, limit: Limit, now: Instant) {
        if let Some(q) = self.failures.get_mut(key) {
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= limit.window)
            {
                q.pop_front();
            }
            if q.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    /// Seconds until another attempt is allowed, if blocked.
    fn blocked_for(&mut self, key: &str, limit: Limit, now: Instant) -> Option<u64> {
        self.prune(key, limit, now);
        let q = self.failures.get(key)?;
        if q.len() < limit.max_failures {
            return None;
        }
        let oldest = *q.front()?;
        let left = limit.window.saturating_sub(now.duration_since(oldest));
        Some(left.as_secs().max(1))
    }

    fn record(&mut self, key: &str, now: Instant) {
        if self.failures.len() >= MAX_KEYS && !self.failures.contains_key(key) {
            let stalest = self
                .failures
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                self.failures.remove(&k);
            }
        }
        self.failures
            .entry(key.to_string())
            .or_default()
            .push_back(now);
    }
}

/// The login throttle of one controller.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    by_address: Mutex<Window>,
    by_user: Mutex<Window>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            by_address: Mutex::default(),
            by_user: Mutex::default(),
        }
    }

    /// `Some(seconds)` if a login from `address` for `user` must wait.
    pub fn check(&self, address: &str, user: &str) -> Option<u64> {
        self.check_at(address, user, Instant::now())
    }

    fn check_at(&self, address: &str, user: &str, now: Instant) -> Option<u64> {
        let a = lock(&self.by_address).blocked_for(address, self.policy.per_address, now);
        let u = lock(&self.by_user).blocked_for(user, self.policy.per_user, now);
        a.max(u)
    }

    pub fn record_failure(&self, address: &str, user: &str) {
        let now = Instant::now();
        lock(&self.by_address).record(address, now);
        lock(&self.by_user).record(user, now);
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn record_success(&self, user: &str) {
        lock(&self.by_user).failures.remove(user);
    }
}

fn lock(m: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    // A panic while holding the lock cannot leave a Window inconsistent: keep using it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            per_address: Limit {
                max_failures: 4,
                window: Duration::from_secs(60),
            },
            per_user: Limit {
                max_failures: 2,
                window: Duration::from_secs(30),
            },
        }
    }

    #[test]
    fn blocks_per_user_then_frees_after_the_window() {
        let t = LoginThrottle::new(policy());
        let now = Instant::now();
        assert_eq!(t.check_at("10.0.0.1", "alice", now), None);
        lock(&t.by_user).record("alice", now);
        lock(&t.by_address).record("10.0.0.1", now);
        lock(&t.by_user).record("alice", now);
        lock(&t.by_address).record("10.0.0.1", now);
        assert_eq!(t.check_at("10.0.0.9", "alice", now), Some(30));
        assert_eq!(t.check_at("10.0.0.1", "bob", now), None);
        let later = now + Duration::from_secs(31);
        assert_eq!(t.check_at("10.0.0.9", "alice", later), None);
    }

    #[test]
    fn blocks_per_address_across_users() {
        let t = LoginThrottle::new(policy());
        let now = Instant::now();
        for u in ["a", "b", "c", "d"] {
            lock(&t.by_address).record("10.0.0.1", now);
            lock(&t.by_user).record(u, now);
        }
        assert_eq!(
            t.check_at("10.0.0.1", "e", now + Duration::from_secs(10)),
            Some(50)
        );
        assert_eq!(t.check_at("10.0.0.2", "e", now), None);
    }

    #[test]
    fn success_clears_the_user() {
        let t = LoginThrottle::new(policy());
        t.record_failure("x", "alice");
        t.record_failure("x", "alice");
        assert!(t.check("y", "alice").is_some());
        t.record_success("alice");
        assert!(t.check("y", "alice").is_none());
    }
}
