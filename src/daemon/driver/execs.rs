//! Execs under way. Every process the daemon starts (a main process,
//! ExecStop, an Exec probe) is cloned without waiting for its exec
//! (`spawn/child.rs`), so the daemon goes on while the kernel execs it. The child's close-on-exec error pipe becomes
//! readable at the outcome (end of file: the program runs; an errno: it
//! could not), which becomes an `ExecDone` input. An exit reaped before its
//! pipe was read is preceded by its outcome ([`Execs::finish`], asked first
//! by the children driver), so the supervisor always hears "it ran" or
//! "it could not" before "it ended".

use crate::hash::HashMap;
use std::collections::VecDeque;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::unistd::Pid;

use crate::daemon::spawn::PendingExec;
use crate::daemon::supervisor::Input;

/// Tokens of exec pipes: this plus the child's pid (below the probes' 2^38).
const FIRST_EXEC_TOKEN: usize = 1 << 37;
/// At most this many execs are awaited at once, and at most half the
/// daemon's descriptor limit (each holds a pipe; the daemon raised its soft
/// limit to the hard one at start): a spawn past it first waits for one of
/// them, which is at most a moment.
const MAX_PENDING: usize = 1024;

fn max_pending() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(256, |(soft, _)| soft);
    usize::try_from(soft / 2)
        .unwrap_or(MAX_PENDING)
        .clamp(8, MAX_PENDING)
}

struct Entry {
    exec: PendingExec,
    /// Its pipe is registered with the loop (done by [`Execs::arm`], only
    /// for the execs still under way when the loop is about to wait).
    registered: bool,
}

#[derive(Default)]
pub struct Execs {
    /// The event loop's registry (None: no loop, outcomes are awaited).
    registry: Option<Registry>,
    pending: HashMap<Pid, Entry>,
    /// Pids of `pending`, oldest first (some may be gone already).
    order: VecDeque<Pid>,
    /// Outcomes already read (without waiting on the loop), for the loop
    /// to feed.
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

    /// Waits for the outcome of `pid`'s exec from now on. Execs that ended
    /// meanwhile (the oldest, in a burst of starts) are settled first: each
    /// pending exec holds a pipe, and every spawn copies the daemon's
    /// descriptor table.
    pub fn add(&mut self, pid: Pid, exec: PendingExec) {
        self.retire();
        if self.pending.len() >= self.cap.max(1) {
            if let Some(oldest) = self.order.pop_front() {
                self.finish(oldest);
            }
        }
        if self.registry.is_none() {
            self.done.push(Input::ExecDone {
                pid,
                outcome: exec.wait(),
            });
            return;
        }
        self.order.push_back(pid);
        self.pending.insert(
            pid,
            Entry {
                exec,
                registered: false,
            },
        );
    }

    /// Settles the oldest execs whose outcome is in, up to the first that
    /// is still under way.
    fn retire(&mut self) {
        while let Some(&oldest) = self.order.front() {
            let Some(entry) = self.pending.get_mut(&oldest) else {
                self.order.pop_front();
                continue;
            };
            let Some(outcome) = entry.exec.poll() else {
                return;
            };
            self.order.pop_front();
            self.forget(oldest);
            self.done.push(Input::ExecDone {
                pid: oldest,
                outcome,
            });
        }
    }

    /// Before the loop waits: the pipes of the execs still under way are
    /// watched from now on. Returns the outcomes of those that could not be
    /// watched (waited for instead), and of those read without the loop.
    pub fn arm(&mut self) -> Vec<Input> {
        let Some(registry) = &self.registry else {
            return self.take_done();
        };
        let mut failed = Vec::new();
        for (pid, entry) in self.pending.iter_mut().filter(|(_, e)| !e.registered) {
            let token = Token(FIRST_EXEC_TOKEN + pid.as_raw() as usize);
            match registry.register(
                &mut SourceFd(&entry.exec.as_raw_fd()),
                token,
                Interest::READABLE,
            ) {
                Ok(()) => entry.registered = true,
                Err(e) => {
                    log::warn!("cannot watch the exec of {pid}: {e}; waiting for it");
                    failed.push(*pid);
                }
            }
        }
        for pid in failed {
            self.finish(pid);
        }
        self.take_done()
    }

    /// The pipe of one exec became readable: its outcome, if it is there.
    pub fn on_ready(&mut self, token: Token) -> Option<Input> {
        let pid = Pid::from_raw(i32::try_from(token.0 - FIRST_EXEC_TOKEN).ok()?);
        let outcome = self.pending.get_mut(&pid)?.exec.poll()?;
        self.forget(pid);
        Some(Input::ExecDone { pid, outcome })
    }

    /// The outcome of `pid`'s exec, if it is still awaited, waited for
    /// (at once when `pid` was reaped: its end of the pipe is closed) and
    /// put with those read without the loop ([`Execs::take_done`]).
    pub fn finish(&mut self, pid: Pid) {
        if let Some(exec) = self.forget(pid) {
            self.done.push(Input::ExecDone {
                pid,
                outcome: exec.wait(),
            });
        }
    }

    /// Every outcome still to come, awaited now (before a hand-over).
    pub fn finish_all(&mut self) -> Vec<Input> {
        let pids: Vec<Pid> = self.pending.keys().copied().collect();
        for pid in pids {
            self.finish(pid);
        }
        self.take_done()
    }

    /// Whether `pid`'s exec is still awaited (it is a child not reaped).
    pub fn under_way(&self, pid: Pid) -> bool {
        self.pending.contains_key(&pid)
    }

    /// Whether no outcome is awaited.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Outcomes read without the loop, oldest first.
    pub fn take_done(&mut self) -> Vec<Input> {
        std::mem::take(&mut self.done)
    }

    fn forget(&mut self, pid: Pid) -> Option<PendingExec> {
        let entry = self.pending.remove(&pid)?;
        if let (Some(registry), true) = (&self.registry, entry.registered) {
            let _ = registry.deregister(&mut SourceFd(&entry.exec.as_raw_fd()));
        }
        if self.pending.is_empty() {
            // A burst of starts is over: what it grew goes back.
            self.pending.shrink_to(0);
            self.order = VecDeque::new();
            crate::daemon::spawn::trim_spare_stacks();
        }
        Some(entry.exec)
    }
}
