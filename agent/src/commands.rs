//! Commands from the controller, as every agent must handle them:
//!
//! - **Epoch fencing**: a command issued under a lower owner epoch than the highest the agent
//!   has seen comes from a controller that has lost ownership; it is ignored.
//! - **Idempotency**: the controller resends a command until a report acknowledges it, so a
//!   command id already known (running, or finished recently) is never started twice.
//! - **Handover**: a new owner re-issues its predecessor's unfinished work under its own ids
//!   with the same [`Command::key`]. A known key is not started again: the running or
//!   finished command takes the new id, so its progress reaches the new owner.
//! - **Progress**: a running command is reported every report with its percent and phase; its
//!   final state is reported until a report carrying it is accepted, then remembered.
//! - **Controller crashes**: a controller killed after accepting a final state in memory but
//!   before persisting it reloads the command as open and resends it. The agent then reports
//!   the remembered final state (state, percent, message, phase) again, until a report
//!   carrying it is accepted — it never runs the command again.
//!
//! What a command *does* is up to the caller ([`crate::site_agent`] or the simulator): it
//! drives the [`Tracked`] entries through [`CommandBook::running_mut`].

use std::collections::VecDeque;

use engine::agents::wire::{
    Command, CommandAction, CommandProgress, CommandState, MAX_COMMAND_PROGRESS, MAX_TEXT,
};

use crate::text::{acceptable, bounded};

/// Finished commands remembered (with their final progress) so a late resend is answered
/// with the final state instead of being run again. Bounded per agent: at most this many
/// entries of ~100 bytes (the message is already bounded to the protocol's text limit).
pub const FINISHED_MEMORY: usize = 256;

/// One command the agent has taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub id: i64,
    /// The work's controller-independent name ([`Command::key`]), when it has one.
    pub key: Option<String>,
    pub action: CommandAction,
    pub state: CommandState,
    pub percent: u8,
    pub message: String,
    /// The phase the executor is in: one of `action.phases()` (kept on the final state: the
    /// phase where it failed, or the last one when it succeeded).
    pub phase: Option<&'static str>,
    /// How many times the executor has worked on it (one step per report).
    pub step: u32,
    /// The simulator's `fail_next_command` chose this command to fail part-way.
    pub doomed: bool,
    /// The final state went out in the latest report; remembered as finished once that
    /// report is accepted.
    final_sent: bool,
}

impl Tracked {
    pub fn run(&mut self, percent: u8) {
        self.state = CommandState::Running;
        self.percent = percent.min(100);
    }

    /// Enters phase `index` of the action's phases (ignored when out of range).
    pub fn enter_phase(&mut self, index: usize) {
        if let Some(p) = self.action.phases().get(index) {
            self.phase = Some(p);
        }
    }

    /// Succeeds in the last phase.
    pub fn succeed(&mut self, message: &str) {
        self.state = CommandState::Succeeded;
        self.percent = 100;
        self.message = bounded(message);
        if let Some(last) = self.action.phases().last() {
            self.phase = Some(last);
        }
    }

    /// Fails at the current percent and phase (the progress reached stays visible).
    pub fn fail(&mut self, message: &str) {
        self.state = CommandState::Failed;
        self.message = bounded(message);
    }

    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }

    pub fn progress(&self) -> CommandProgress {
        CommandProgress {
            id: self.id,
            state: self.state,
            percent: self.percent,
            message: self.message.clone(),
            phase: self.phase.map(String::from),
        }
    }
}

/// The final progress of a command whose final state a controller accepted, kept compact.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finished {
    id: i64,
    key: Option<Box<str>>,
    state: CommandState,
    percent: u8,
    phase: Option<&'static str>,
    message: Box<str>,
}

/// What [`CommandBook::receive`] did with the commands of one answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    pub accepted: usize,
    /// Issued under an epoch below the highest seen.
    pub fenced: usize,
    /// Already running or finished: not started again.
    pub duplicates: usize,
    /// Of the duplicates, finished ones resent (a controller that lost the final state):
    /// their final state goes out again in the next report.
    pub reported_again: usize,
    /// No room in the report's progress list yet; the controller will resend them.
    pub deferred: usize,
    /// (old id, new id) of commands (running or finished) a new owner re-issued under the
    /// same key: they are now reported under the new id.
    pub relabeled: Vec<(i64, i64)>,
}

/// A key short enough to keep (a longer one is treated as absent: the id still dedupes).
fn usable_key(c: &Command) -> Option<&str> {
    c.key
        .as_deref()
        .filter(|k| !k.is_empty() && k.len() <= MAX_TEXT)
}

/// Checks a command's arguments before anything runs; the message says what is wrong.
/// Shared by the real agent and the simulator so both refuse the same commands.
pub fn validate_action(action: &CommandAction) -> Result<(), String> {
    let name = |what: &str, v: &str| {
        if v.trim().is_empty() || !acceptable(v) || v.len() > 64 {
            Err(format!("the {what} {:?} is not valid", bounded(v)))
        } else {
            Ok(())
        }
    };
    match action {
        CommandAction::SoftwareDeploy { release } | CommandAction::Prestage { release, .. } => {
            if release.trim().is_empty() || !acceptable(release) {
                Err("the release name is not valid".into())
            } else {
                Ok(())
            }
        }
        CommandAction::KubernetesUpgrade { to_version } => {
            if is_kube_version(to_version) {
                Ok(())
            } else {
                Err(format!(
                    "the kubernetes version {:?} is not valid (expected e.g. v1.29.2)",
                    bounded(to_version)
                ))
            }
        }
        CommandAction::KubeRootcaUpdate {
            expiry_date,
            subject,
        } => {
            if let Some(d) = expiry_date {
                if !is_date(d) {
                    return Err(format!(
                        "the expiry date {:?} is not valid (expected YYYY-MM-DD)",
                        bounded(d)
                    ));
                }
            }
            if let Some(s) = subject {
                if s.trim().is_empty() || !acceptable(s) {
                    return Err("the certificate subject is not valid".into());
                }
            }
            Ok(())
        }
        CommandAction::Rollback { of, to } => {
            name("strategy type", of)?;
            name("release or version to roll back to", to)
        }
        CommandAction::SyncEndpoints | CommandAction::FirmwareUpdate => Ok(()),
        CommandAction::Unknown => Err("unsupported command".into()),
    }
}

/// `v1.29.2` or `1.29.2` (two or three numeric parts).
fn is_kube_version(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let parts: Vec<&str> = v.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month = (b[5] - b'0') * 10 + (b[6] - b'0');
    let day = (b[8] - b'0') * 10 + (b[9] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// The commands an agent is working on or has to report final, and the final states of the
/// ones recently finished.
#[derive(Debug, Default, Clone)]
pub struct CommandBook {
    active: Vec<Tracked>,
    finished: VecDeque<Finished>,
}

impl CommandBook {
    /// Takes on the commands of an answer. `highest_epoch` must already include the answer's
    /// `owner_epoch`. `admit` sees each newly accepted command once (the simulator arms
    /// `doomed` there); a resent finished command is not admitted again, its final state is
    /// reported again instead.
    pub fn receive(
        &mut self,
        commands: &[Command],
        highest_epoch: u64,
        mut admit: impl FnMut(&mut Tracked),
    ) -> Received {
        let mut r = Received::default();
        for c in commands {
            let key = usable_key(c);
            let same = |id: i64, k: Option<&str>| id == c.id || (key.is_some() && k == key);
            if c.epoch < highest_epoch {
                r.fenced += 1;
            } else if let Some(t) = self
                .active
                .iter_mut()
                .find(|t| same(t.id, t.key.as_deref()))
            {
                r.duplicates += 1;
                if t.id != c.id {
                    r.relabeled.push((t.id, c.id));
                    t.id = c.id;
                    // A final state sent under the old id goes out again under the new one.
                    t.final_sent = false;
                }
            } else if self.active.len() >= MAX_COMMAND_PROGRESS {
                r.deferred += 1;
            } else if let Some(k) = self
                .finished
                .iter()
                .position(|f| same(f.id, f.key.as_deref()))
            {
                r.duplicates += 1;
                r.reported_again += 1;
                if let Some(f) = self.finished.remove(k) {
                    if f.id != c.id {
                        r.relabeled.push((f.id, c.id));
                    }
                    self.active.push(Tracked {
                        id: c.id,
                        key: key.map(String::from),
                        action: c.action.clone(),
                        state: f.state,
                        percent: f.percent,
                        message: f.message.into(),
                        phase: f.phase,
                        step: 0,
                        doomed: false,
                        final_sent: false,
                    });
                }
            } else {
                let mut t = Tracked {
                    id: c.id,
                    key: key.map(String::from),
                    action: c.action.clone(),
                    state: CommandState::Running,
                    percent: 0,
                    message: String::new(),
                    phase: None,
                    step: 0,
                    doomed: false,
                    final_sent: false,
                };
                admit(&mut t);
                self.active.push(t);
                r.accepted += 1;
            }
        }
        r
    }

    /// Whether `id` is running, awaiting acknowledgement, or finished recently.
    pub fn knows(&self, id: i64) -> bool {
        self.active.iter().any(|t| t.id == id) || self.finished.iter().any(|f| f.id == id)
    }

    /// Commands not yet final, for the executor to advance.
    pub fn running_mut(&mut self) -> impl Iterator<Item = &mut Tracked> {
        self.active.iter_mut().filter(|t| !t.is_final())
    }

    /// Every command taken on and not yet acknowledged final.
    pub fn active(&self) -> &[Tracked] {
        &self.active
    }

    /// The final progress remembered for a finished (and acknowledged) command.
    pub fn finished(&self, id: i64) -> Option<CommandProgress> {
        self.finished
            .iter()
            .find(|f| f.id == id)
            .map(|f| CommandProgress {
                id: f.id,
                state: f.state,
                percent: f.percent,
                message: f.message.to_string(),
                phase: f.phase.map(String::from),
            })
    }

    /// The progress list of the next report. Final states included here are remembered as
    /// finished by the next [`acknowledge`](Self::acknowledge).
    pub fn progress(&mut self) -> Vec<CommandProgress> {
        self.active
            .iter_mut()
            .map(|t| {
                t.final_sent = t.is_final();
                t.progress()
            })
            .collect()
    }

    /// The report built by the last [`progress`](Self::progress) was accepted: final states
    /// it carried are delivered.
    pub fn acknowledge(&mut self) {
        let finished = &mut self.finished;
        self.active.retain_mut(|t| {
            if t.final_sent {
                if finished.len() >= FINISHED_MEMORY {
                    finished.pop_front();
                }
                finished.push_back(Finished {
                    id: t.id,
                    key: t.key.take().map(String::into_boxed_str),
                    state: t.state,
                    percent: t.percent,
                    phase: t.phase,
                    message: std::mem::take(&mut t.message).into_boxed_str(),
                });
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: i64, epoch: u64) -> Command {
        Command {
            id,
            epoch,
            action: CommandAction::SyncEndpoints,
            key: None,
        }
    }

    fn keyed(id: i64, epoch: u64, key: &str) -> Command {
        Command {
            key: Some(key.into()),
            ..cmd(id, epoch)
        }
    }

    #[test]
    fn work_a_new_owner_reissues_under_the_same_key_is_not_run_again() {
        let mut book = CommandBook::default();
        let mut executions = 0;
        // The old owner (epoch 1) issued it as its command 40; it is half done.
        book.receive(&[keyed(40, 1, "s1/7/1")], 1, |_| executions += 1);
        book.running_mut().for_each(|t| t.run(50));
        book.progress();
        book.acknowledge();
        // The new owner (epoch 66) re-issues it as its command 3: same work, new id.
        let r = book.receive(&[keyed(3, 66, "s1/7/1")], 66, |_| executions += 1);
        assert_eq!(
            (r.accepted, r.duplicates, r.relabeled.clone()),
            (0, 1, vec![(40, 3)])
        );
        assert_eq!(executions, 1, "not started again");
        let p = book.progress();
        assert_eq!(
            (p[0].id, p[0].percent),
            (3, 50),
            "progress goes on under the new id"
        );
        // Finished under the new owner and acknowledged; a third owner re-issues it again.
        book.running_mut().for_each(|t| t.succeed("done"));
        book.progress();
        book.acknowledge();
        let r = book.receive(&[keyed(900, 129, "s1/7/1")], 129, |_| executions += 1);
        assert_eq!(
            (r.accepted, r.reported_again, r.relabeled),
            (0, 1, vec![(3, 900)])
        );
        let p = book.progress();
        assert_eq!((p[0].id, p[0].state), (900, CommandState::Succeeded));
        assert_eq!(executions, 1);
        // The next attempt of the same step is other work: it runs.
        book.acknowledge();
        let r = book.receive(&[keyed(901, 129, "s1/7/2")], 129, |_| executions += 1);
        assert_eq!((r.accepted, executions), (1, 2));
        // The deposed owner's resend of its own id is fenced, not matched.
        assert_eq!(
            book.receive(&[keyed(40, 1, "s1/7/1")], 129, |_| {}).fenced,
            1
        );
    }

    #[test]
    fn commands_from_a_lower_epoch_are_fenced() {
        let mut book = CommandBook::default();
        let r = book.receive(&[cmd(1, 4), cmd(2, 5), cmd(3, 6)], 5, |_| {});
        assert_eq!((r.accepted, r.fenced), (2, 1));
        let ids: Vec<i64> = book.active().iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![2, 3]);
    }

    #[test]
    fn resent_commands_run_once() {
        let mut book = CommandBook::default();
        let mut admitted = 0;
        book.receive(&[cmd(1, 0)], 0, |_| admitted += 1);
        let r = book.receive(&[cmd(1, 0), cmd(1, 0)], 0, |_| admitted += 1);
        assert_eq!((admitted, r.duplicates, book.active().len()), (1, 2, 1));
        // Still a duplicate once finished and acknowledged.
        book.running_mut().for_each(|t| t.succeed("done"));
        book.progress();
        book.acknowledge();
        assert!(book.active().is_empty());
        assert_eq!(book.receive(&[cmd(1, 0)], 0, |_| {}).duplicates, 1);
    }

    #[test]
    fn final_state_is_reported_until_a_report_carrying_it_is_accepted() {
        let mut book = CommandBook::default();
        book.receive(&[cmd(7, 0)], 0, |_| {});
        book.running_mut().for_each(|t| t.run(20));
        assert_eq!(book.progress()[0].state, CommandState::Running);
        book.acknowledge();
        assert_eq!(
            book.active().len(),
            1,
            "running commands are never forgotten"
        );
        book.running_mut().for_each(|t| t.fail("broke"));
        // That report is lost: nothing is acknowledged, the final state goes out again.
        assert_eq!(book.progress()[0].state, CommandState::Failed);
        let again = book.progress();
        assert_eq!(
            (again[0].state, again[0].message.as_str()),
            (CommandState::Failed, "broke")
        );
        book.acknowledge();
        assert!(book.progress().is_empty());
    }

    #[test]
    fn a_finished_command_resent_after_a_controller_crash_is_reported_again_not_run() {
        let mut book = CommandBook::default();
        let mut executions = 0;
        book.receive(&[cmd(9, 0)], 0, |_| executions += 1);
        for t in book.running_mut() {
            t.enter_phase(0);
            t.run(50);
            t.fail("syncing failed: audit timed out");
        }
        let first = book.progress();
        book.acknowledge();
        assert!(book.progress().is_empty(), "delivered, then remembered");
        // The controller crashed before persisting that final state: it resends the command.
        let r = book.receive(&[cmd(9, 0)], 0, |_| executions += 1);
        assert_eq!((r.accepted, r.duplicates, r.reported_again), (0, 1, 1));
        assert_eq!(executions, 1, "never run again");
        assert_eq!(book.running_mut().count(), 0, "nothing for the executor");
        let again = book.progress();
        assert_eq!(again, first, "same state, percent, message and phase");
        assert_eq!(again[0].phase.as_deref(), Some("syncing"));
        // Lost report: still carried until a report with it is accepted.
        assert_eq!(book.progress(), first);
        book.acknowledge();
        assert!(book.progress().is_empty(), "once per resend");
        assert_eq!(book.finished(9), Some(first[0].clone()));
        // Resent again (the controller crashed twice): reported again, still not run.
        book.receive(&[cmd(9, 0), cmd(9, 0)], 0, |_| executions += 1);
        assert_eq!((book.progress(), executions), (first, 1));
    }

    #[test]
    fn finished_memory_is_bounded() {
        let mut book = CommandBook::default();
        for id in 0..(FINISHED_MEMORY as i64 + 10) {
            book.receive(&[cmd(id, 0)], 0, |_| {});
            book.running_mut().for_each(|t| t.succeed("done"));
            book.progress();
            book.acknowledge();
        }
        assert_eq!(book.finished.len(), FINISHED_MEMORY);
        assert!(!book.knows(0) && book.knows(FINISHED_MEMORY as i64 + 9));
        let p = book.finished(FINISHED_MEMORY as i64).unwrap();
        assert_eq!(
            (p.state, p.percent, p.phase.as_deref()),
            (CommandState::Succeeded, 100, Some("syncing"))
        );
    }

    #[test]
    fn phases_are_reported_with_the_progress() {
        let mut book = CommandBook::default();
        book.receive(
            &[Command {
                id: 1,
                epoch: 0,
                action: CommandAction::SoftwareDeploy {
                    release: "25.09".into(),
                },
                key: None,
            }],
            0,
            |_| {},
        );
        for t in book.running_mut() {
            t.enter_phase(3);
            t.run(70);
        }
        let p = book.progress();
        assert_eq!(p[0].phase.as_deref(), Some("apply VIM sw-deploy strategy"));
        book.running_mut().for_each(|t| t.enter_phase(99));
        assert_eq!(
            book.progress()[0].phase.as_deref(),
            Some("apply VIM sw-deploy strategy"),
            "out of range: unchanged"
        );
        book.running_mut().for_each(|t| t.succeed("done"));
        assert_eq!(
            book.progress()[0].phase.as_deref(),
            Some("finish sw-deploy strategy")
        );
    }

    #[test]
    fn arguments_are_validated() {
        use CommandAction::*;
        let ok = [
            SoftwareDeploy {
                release: "25.09".into(),
            },
            KubernetesUpgrade {
                to_version: "v1.29.2".into(),
            },
            KubernetesUpgrade {
                to_version: "1.32".into(),
            },
            KubeRootcaUpdate {
                expiry_date: Some("2030-12-31".into()),
                subject: Some("C=CA O=company CN=kubernetes".into()),
            },
            KubeRootcaUpdate {
                expiry_date: None,
                subject: None,
            },
            FirmwareUpdate,
            Prestage {
                release: "25.09".into(),
                for_install: true,
            },
            Rollback {
                of: "sw-deploy".into(),
                to: "24.09".into(),
            },
            SyncEndpoints,
        ];
        for a in ok {
            assert_eq!(validate_action(&a), Ok(()), "{a:?}");
        }
        let bad = [
            SoftwareDeploy {
                release: " ".into(),
            },
            SoftwareDeploy {
                release: "a\nb".into(),
            },
            KubernetesUpgrade {
                to_version: "latest".into(),
            },
            KubernetesUpgrade {
                to_version: "v1..2".into(),
            },
            KubeRootcaUpdate {
                expiry_date: Some("2030-13-01".into()),
                subject: None,
            },
            KubeRootcaUpdate {
                expiry_date: None,
                subject: Some("".into()),
            },
            Prestage {
                release: "".into(),
                for_install: false,
            },
            Rollback {
                of: "".into(),
                to: "24.09".into(),
            },
            Rollback {
                of: "sw-deploy".into(),
                to: "".into(),
            },
            Unknown,
        ];
        for a in bad {
            let e = validate_action(&a).unwrap_err();
            assert!(!e.is_empty() && acceptable(&e), "{a:?}: {e}");
        }
    }

    #[test]
    fn progress_list_stays_within_the_protocol_bound() {
        let mut book = CommandBook::default();
        let many: Vec<Command> = (0..40).map(|i| cmd(i, 0)).collect();
        let r = book.receive(&many, 0, |_| {});
        assert_eq!(
            (r.accepted, r.deferred),
            (MAX_COMMAND_PROGRESS, 40 - MAX_COMMAND_PROGRESS)
        );
        assert!(book.progress().len() <= MAX_COMMAND_PROGRESS);
    }
}
