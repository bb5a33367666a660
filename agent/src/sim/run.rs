//! The async side of a site: enroll, then report on schedule through the shared client and
//! the in-flight bound. All decisions are the site's ([`super::site`]); this file only waits,
//! sends and counts.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use super::rng::fnv1a;
use super::site::{Attempt, Plan};
use super::Shared;
use crate::transport::TransportError;

/// Enrollment retry backoff when no controller could be reached.
const ENROLL_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// After a 401 the credential is unlikely to come back soon: report this many intervals apart.
const UNAUTHORIZED_INTERVALS: u32 = 6;

/// When the next report of a site is due.
enum Next {
    /// On schedule: one interval (± jitter) after the previous due time.
    Interval,
    /// After a back-off, counted from now.
    After(Duration),
}

/// One site's whole life.
pub(super) async fn site(shared: Arc<Shared>, i: usize) {
    let enrolled = Box::pin(enroll(&shared, i)).await;
    shared.stats.enroll_pending.fetch_sub(1, Relaxed);
    if !enrolled {
        return;
    }
    let Some(offset) = shared.site(i).map(|mut s| s.first_offset_ms()) else {
        return;
    };
    let mut due = Instant::now() + Duration::from_millis(offset);
    loop {
        sleep_until(due).await;
        let steps = shared.steps();
        let Some((plan, tick)) = shared.site(i).map(|mut s| s.plan(shared.now_ms(), &steps)) else {
            return;
        };
        shared.stats.count_commands(&tick);
        let next = match plan {
            Plan::Idle => Next::Interval,
            Plan::Dropped => {
                shared.stats.dropped.fetch_add(1, Relaxed);
                Next::Interval
            }
            Plan::Send { delay_ms } => {
                let delay = Duration::from_millis(u64::from(delay_ms));
                if !delay.is_zero() {
                    sleep(delay).await;
                }
                let Ok(_permit) = shared.in_flight.acquire().await else {
                    return;
                };
                shared
                    .stats
                    .lag
                    .record(Instant::now().saturating_duration_since(due + delay));
                // Boxed: the request futures are large and only live during a send, so
                // 20,000 sleeping sites do not each carry one.
                Box::pin(report(&shared, i)).await
            }
        };
        let now = Instant::now();
        due = match next {
            Next::Interval => {
                let Some(d) = shared.site(i).map(|mut s| s.next_delay_ms()) else {
                    return;
                };
                let d = Duration::from_millis(d);
                // Fixed rate keeps the load spread; when more than an interval behind,
                // start over from now instead of bursting to catch up.
                if due + d > now {
                    due + d
                } else {
                    now + d
                }
            }
            Next::After(d) => now + d,
        };
    }
}

/// One report: tries controllers in failover order until one answers.
async fn report(shared: &Shared, i: usize) -> Next {
    let Some(order) = shared.site(i).map(|s| s.controllers.attempt_order()) else {
        return Next::Interval;
    };
    for c in order {
        let Some(interval) = shared
            .site(i)
            .map(|s| Duration::from_millis(s.interval_ms()))
        else {
            return Next::Interval;
        };
        let attempt = shared
            .site(i)
            .and_then(|mut s| s.prepare(c, crate::wall_ms(), &shared.coords));
        let (url, auth, report) = match attempt {
            None => return Next::Interval,
            Some(Attempt::Partitioned) => {
                shared.stats.partitioned.fetch_add(1, Relaxed);
                continue;
            }
            Some(Attempt::Send { url, auth, report }) => (url, auth, report),
        };
        shared.stats.sent.fetch_add(1, Relaxed);
        let started = Instant::now();
        let result = {
            let _gauge = InFlight::enter(shared);
            shared
                .transport
                .report(&url, &auth, &report, interval)
                .await
        };
        drop(report);
        if !matches!(result, Err(TransportError::Transport(_))) {
            shared.stats.rtt.record(started.elapsed());
        }
        let Some(mut site) = shared.site(i) else {
            return Next::Interval;
        };
        match result {
            Ok(answer) => {
                let outcome = site.accepted(c, answer, |l| shared.share(l));
                shared.stats.accepted.fetch_add(1, Relaxed);
                if outcome.failover {
                    shared.stats.failovers.fetch_add(1, Relaxed);
                }
                shared
                    .stats
                    .commands_fenced
                    .fetch_add(outcome.fenced as u64, Relaxed);
                shared
                    .stats
                    .commands_reissued
                    .fetch_add(outcome.reissued as u64, Relaxed);
                if outcome.go_to_owner {
                    // A new owner was named: report there within a second (spread, so a
                    // whole group does not arrive at once), then on schedule again.
                    return Next::After(Duration::from_millis(100) + spread(i, site.last_seq()));
                }
                return Next::Interval;
            }
            Err(e) => {
                shared.stats.count_error(&e);
                site.failed(c, &e);
                if e.is_failover() {
                    continue;
                }
                let interval = Duration::from_millis(site.interval_ms());
                return match e {
                    TransportError::Overloaded { retry_after } => {
                        Next::After(retry_after.unwrap_or(interval) + spread(i, site.last_seq()))
                    }
                    TransportError::Unauthorized(_) => {
                        Next::After(interval * UNAUTHORIZED_INTERVALS)
                    }
                    _ => Next::Interval,
                };
            }
        }
    }
    // No controller answered; try again on schedule.
    Next::Interval
}

/// Enrolls site `i`: retries while no controller can be reached, gives up on a refusal.
async fn enroll(shared: &Shared, i: usize) -> bool {
    let Some(request) = shared.site(i).and_then(|s| s.enroll_request()) else {
        return false;
    };
    let mut backoff = ENROLL_BACKOFF.0;
    for attempt in 0u64.. {
        // A site that is down does not enroll either.
        while shared.site(i).is_some_and(|s| s.is_silent(shared.now_ms())) {
            sleep(Duration::from_secs(1)).await;
        }
        let Ok(permit) = shared.enrolling.acquire().await else {
            return false;
        };
        let Some(list) = shared.site(i).map(|s| Arc::clone(s.controllers.list())) else {
            return false;
        };
        let mut wait = backoff;
        for (c, controller) in list.iter().enumerate() {
            if shared
                .site(i)
                .is_some_and(|s| s.faults.is_partitioned(controller))
            {
                continue;
            }
            let result = Box::pin(shared.transport.enroll(&controller.url, &request)).await;
            let Some(mut site) = shared.site(i) else {
                return false;
            };
            match result {
                Ok(mut enrollment) => {
                    let offered = std::mem::take(&mut enrollment.controllers);
                    let list = (!offered.is_empty()).then(|| shared.share(offered));
                    return match site.enrolled(&enrollment, c, list) {
                        Ok(()) => {
                            shared.stats.enrolled.fetch_add(1, Relaxed);
                            true
                        }
                        Err(e) => refused(shared, &mut site, &e),
                    };
                }
                Err(e) if e.is_failover() => site.note_error(&e),
                Err(TransportError::Overloaded { retry_after }) => {
                    site.note_error(&TransportError::Overloaded { retry_after });
                    wait = retry_after.unwrap_or(backoff);
                    break;
                }
                Err(e) => return refused(shared, &mut site, &e),
            }
        }
        drop(permit);
        sleep(wait + spread(i, attempt)).await;
        backoff = (backoff * 2).min(ENROLL_BACKOFF.1);
    }
    false
}

fn refused(shared: &Shared, site: &mut super::site::SimSite, e: &TransportError) -> bool {
    tracing::warn!(site = %site.name, error = %e, "enrollment refused");
    site.enroll_refused(e);
    shared.stats.enroll_failed.fetch_add(1, Relaxed);
    false
}

/// Up to a second of spread so sites backing off together do not return together. Derived
/// from the site and a counter, not drawn, so back-offs leave the seeded streams alone.
fn spread(i: usize, salt: u64) -> Duration {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(i as u64).to_le_bytes());
    key[8..].copy_from_slice(&salt.to_le_bytes());
    Duration::from_millis(fnv1a(&key) % 1_000)
}

/// Counts a request in flight for as long as it lives (also when the task is aborted).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.stats.in_flight.fetch_add(1, Relaxed);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.stats.in_flight.fetch_sub(1, Relaxed);
    }
}
