//! Execs under way. A service's main process is forked without waiting for
//! its exec (`spawn.rs`), so the daemon starts the next service while the
//! kernel execs this one. The child's close-on-exec error pipe becomes
//! readable at the outcome (end of file: the program runs; an errno: it
//! could not), which becomes an `ExecDone` input. An exit reaped before its
//! pipe was read is preceded by its outcome ([`Execs::finish`], asked first
//! by the children driver), so the supervisor always hears "it ran" or
//! "it could not" before "it ended".

use std::collections::HashMap;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::unistd::Pid;

use crate::daemon::spawn::PendingExec;
use crate::daemon::supervisor::Input;

/// Tokens of exec pipes: this plus the child's pid (below the probes' 2^38).
const FIRST_EXEC_TOKEN: usize = 1 << 37;
/// At most this many execs are awaited at once, and at most half the
/// daemon's descriptor limit (each holds a pipe; the limit is the
/// services' too, so it is not raised): a spawn past it first waits for
/// one of them, which is at most a moment.
const MAX_PENDING: usize = 1024;

fn max_pending() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(256, |(soft, _)| soft);
    usize::try_from(soft / 2)
        .unwrap_or(MAX_PENDING)
        .clamp(8, MAX_PENDING)
}

#[derive(Default)]
pub struct Execs {
    /// The event loop's registry (None: no loop, outcomes are awaited).
    registry: Option<Registry>,
    pending: HashMap<Pid, PendingExec>,
    /// Outcomes already read (awaited at the cap), for the loop to feed.
    done: Vec<Input>,
    /// [`max_pending`], read once.
    cap: usize,
}

impl Execs {
    pub fn new(registry: Option<Registry>) -> Execs {
        Execs {
            registry,
            cap: max_pending(),
            ..Execs::default()
        }
    }

    pub fn owns(token: Token) -> bool {
        (FIRST_EXEC_TOKEN..FIRST_EXEC_TOKEN << 1).contains(&token.0)
    }

    /// Waits for the outcome of `pid`'s exec from now on.
    pub fn add(&mut self, pid: Pid, exec: PendingExec) {
        if self.pending.len() >= self.cap.max(1) {
            if let Some(&oldest) = self.pending.keys().next() {
                if let Some(input) = self.finish(oldest) {
                    self.done.push(input);
                }
            }
        }
        let token = Token(FIRST_EXEC_TOKEN + pid.as_raw() as usize);
        let registered = self.registry.as_ref().is_some_and(|r| {
            r.register(&mut SourceFd(&exec.as_raw_fd()), token, Interest::READABLE)
                .map_err(|e| log::warn!("cannot watch the exec of {pid}: {e}; waiting for it"))
                .is_ok()
        });
        if registered {
            self.pending.insert(pid, exec);
        } else {
            self.done.push(Input::ExecDone {
                pid,
                outcome: exec.wait(),
            });
        }
    }

    /// The pipe of one exec became readable: its outcome, if it is there.
    pub fn on_ready(&mut self, token: Token) -> Option<Input> {
        let pid = Pid::from_raw(i32::try_from(token.0 - FIRST_EXEC_TOKEN).ok()?);
        let outcome = self.pending.get(&pid)?.poll()?;
        self.forget(pid);
        Some(Input::ExecDone { pid, outcome })
    }

    /// `pid` was reaped: the outcome of its exec if it was still awaited
    /// (it is there: the child has ended, its end of the pipe is closed).
    pub fn finish(&mut self, pid: Pid) -> Option<Input> {
        let exec = self.forget(pid)?;
        Some(Input::ExecDone {
            pid,
            outcome: exec.wait(),
        })
    }

    /// Every outcome still to come, awaited now (before a hand-over).
    pub fn finish_all(&mut self) -> Vec<Input> {
        let pids: Vec<Pid> = self.pending.keys().copied().collect();
        let mut done = self.take_done();
        done.extend(pids.into_iter().filter_map(|pid| self.finish(pid)));
        done
    }

    /// Whether no outcome is awaited.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Outcomes read at once (past the cap), oldest first.
    pub fn take_done(&mut self) -> Vec<Input> {
        std::mem::take(&mut self.done)
    }

    fn forget(&mut self, pid: Pid) -> Option<PendingExec> {
        let exec = self.pending.remove(&pid)?;
        if let Some(registry) = &self.registry {
            let _ = registry.deregister(&mut SourceFd(&exec.as_raw_fd()));
        }
        Some(exec)
    }
}
