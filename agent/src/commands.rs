//! Commands from the controller, as every agent must handle them:
//!
//! - **Epoch fencing**: a command issued under a lower owner epoch than the highest the agent
//!   has seen comes from a controller that has lost ownership; it is ignored.
//! - **Idempotency**: the controller resends a command until a report acknowledges it, so a
//!   command id already known (running, or finished recently) is not started twice.
//! - **Progress**: a running command is reported every report with its percent; its final
//!   state is reported until a report carrying it is accepted, then forgotten.
//!
//! What a command *does* is up to the caller ([`crate::site_agent`] or the simulator): it
//! drives the [`Tracked`] entries through [`CommandBook::running_mut`].

use std::collections::VecDeque;

use engine::agents::wire::{
    Command, CommandAction, CommandProgress, CommandState, MAX_COMMAND_PROGRESS,
};

use crate::text::bounded;

/// Finished command ids remembered so a late resend is not run again.
const FINISHED_MEMORY: usize = 256;

/// One command the agent has taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub id: i64,
    pub action: CommandAction,
    pub state: CommandState,
    pub percent: u8,
    pub message: String,
    /// How many times the executor has worked on it (one step per report).
    pub step: u32,
    /// The simulator's `fail_next_command` chose this command to fail part-way.
    pub doomed: bool,
    /// The final state went out in the latest report; forgotten once that report is accepted.
    final_sent: bool,
}

impl Tracked {
    pub fn run(&mut self, percent: u8) {
        self.state = CommandState::Running;
        self.percent = percent.min(100);
    }

    pub fn succeed(&mut self, message: &str) {
        self.state = CommandState::Succeeded;
        self.percent = 100;
        self.message = bounded(message);
    }

    /// Fails at the current percent (the progress reached stays visible).
    pub fn fail(&mut self, message: &str) {
        self.state = CommandState::Failed;
        self.message = bounded(message);
    }

    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }
}

/// What [`CommandBook::receive`] did with the commands of one answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub accepted: usize,
    /// Issued under an epoch below the highest seen.
    pub fenced: usize,
    /// Already running or finished.
    pub duplicates: usize,
    /// No room in the report's progress list yet; the controller will resend them.
    pub deferred: usize,
}

/// The commands an agent is working on or has to report final.
#[derive(Debug, Default, Clone)]
pub struct CommandBook {
    active: Vec<Tracked>,
    finished: VecDeque<i64>,
}

impl CommandBook {
    /// Takes on the commands of an answer. `highest_epoch` must already include the answer's
    /// `owner_epoch`. `admit` sees each newly accepted command once (the simulator arms
    /// `doomed` there).
    pub fn receive(
        &mut self,
        commands: &[Command],
        highest_epoch: u64,
        mut admit: impl FnMut(&mut Tracked),
    ) -> Received {
        let mut r = Received::default();
        for c in commands {
            if c.epoch < highest_epoch {
                r.fenced += 1;
            } else if self.knows(c.id) {
                r.duplicates += 1;
            } else if self.active.len() >= MAX_COMMAND_PROGRESS {
                r.deferred += 1;
            } else {
                let mut t = Tracked {
                    id: c.id,
                    action: c.action.clone(),
                    state: CommandState::Running,
                    percent: 0,
                    message: String::new(),
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
        self.active.iter().any(|t| t.id == id) || self.finished.contains(&id)
    }

    /// Commands not yet final, for the executor to advance.
    pub fn running_mut(&mut self) -> impl Iterator<Item = &mut Tracked> {
        self.active.iter_mut().filter(|t| !t.is_final())
    }

    /// Every command taken on and not yet acknowledged final.
    pub fn active(&self) -> &[Tracked] {
        &self.active
    }

    /// The progress list of the next report. Final states included here are forgotten by the
    /// next [`acknowledge`](Self::acknowledge).
    pub fn progress(&mut self) -> Vec<CommandProgress> {
        self.active
            .iter_mut()
            .map(|t| {
                t.final_sent = t.is_final();
                CommandProgress {
                    id: t.id,
                    state: t.state,
                    percent: t.percent,
                    message: t.message.clone(),
                }
            })
            .collect()
    }

    /// The report built by the last [`progress`](Self::progress) was accepted: final states
    /// it carried are delivered.
    pub fn acknowledge(&mut self) {
        let finished = &mut self.finished;
        self.active.retain(|t| {
            if t.final_sent {
                if finished.len() == FINISHED_MEMORY {
                    finished.pop_front();
                }
                finished.push_back(t.id);
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
        }
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
