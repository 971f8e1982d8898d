//! Start-up and container mode, the parts of the event loop that run
//! around it rather than in it: adopting what the previous daemon left
//! (the state file, tagged processes, reclaimed sockets) and starting the
//! enabled units; `daemon --init`'s named units and its exit policy
//! (SPEC §14), checked once per pass; and the end of the loop.

use std::time::Instant;

use crate::daemon::driver::activation;
use crate::daemon::event_loop::EventLoop;
use crate::daemon::handed::Handed;
use crate::daemon::persist;
use crate::daemon::spawn;
use crate::daemon::supervisor::Input;
use crate::daemon::system;
use crate::error::Error;

impl EventLoop {
    /// Adopts what the previous daemon left (the state file, and services
    /// found by their tag, which a daemon that died before writing its
    /// state left behind) and starts the enabled units. The first daemon
    /// of a home has nothing to adopt and does not look through `/proc`.
    /// The sockets `handed` over by the daemon before are claimed before
    /// anything starts; the rest are closed.
    /// `no_tag_search`: the first daemon of the home (nothing to find), or
    /// one started by a hand-over, whose state file was written as the old
    /// daemon left: nothing it started is newer, so a tagged process the
    /// file does not name is what a run left behind, not a main process.
    pub fn restore(&mut self, saved: persist::SavedState, no_tag_search: bool, handed: Handed) {
        let mut handed = handed;
        let units = self.sup.entries().iter().filter_map(|e| e.unit.as_deref());
        self.sys.listeners.claim(&mut handed, units);
        let home = &self.sys.home;
        let enabled = persist::load_enabled(&home.enabled());
        let boot_id = crate::procfs::boot_id();
        let mut saved = saved;
        // After a reboot what ran is started again (SPEC §7: a daemon
        // restores what was running), not judged dead by its policy.
        let rebooted = saved.from_another_boot(boot_id.as_deref());
        if saved.boot.is_none() && saved.services.iter().any(|s| s.pid.is_some()) {
            // Written by an older release, or its boot record was left out
            // as unreadable: the processes are checked by their identity.
            log::info!(
                "the state file says nothing of the boot it was written in: taking it as this boot's ({} units)",
                saved.services.len()
            );
        }
        if rebooted {
            saved.after_reboot();
            log::info!(
                "the state file was written before a reboot: starting again what was running ({} units)",
                saved.services.len()
            );
        }
        let tagged = if no_tag_search || rebooted {
            Vec::new()
        } else {
            spawn::find_tagged(&home.dir)
        };
        let now = Instant::now();
        self.sup.set_wall_clock(now, system::unix_now_ms());
        let mono = crate::procfs::monotonic_time().map_or(0, |d| d.as_millis() as u64);
        let (boot, runs, ago) = activation::carry_on(
            saved.boot.take(),
            std::mem::take(&mut saved.runs),
            boot_id,
            mono,
        );
        self.unit_timers
            .set_started(now.checked_sub(ago).unwrap_or(now));
        self.sup.set_boot(boot, runs);
        let adopted = self.sup.restore(saved, tagged, enabled, now, &mut self.sys);
        for e in self.sup.entries() {
            let (Some(unit), Some(pid)) = (&e.unit, e.svc.pid()) else {
                continue;
            };
            if let Some(socket) = &unit.socket {
                if let Err(why) = self.sys.listeners.reclaim(&unit.name, socket, pid.as_raw()) {
                    log::warn!(
                        "{}: cannot take its sockets back ({why}); its next start binds them again",
                        unit.name
                    );
                }
            }
        }
        for pid in adopted {
            self.children
                .watch(pid, self.poll.registry(), &mut self.sup, now);
        }
        if !handed.is_empty() {
            log::info!("hand-over: closing the sockets no unit names now");
        }
    }

    /// Container mode (SPEC §14): starts the named units (the enabled ones
    /// were started by `restore`), runs until the exit policy or a signal
    /// stopped everything, and returns the exit code.
    pub fn run_init(&mut self, init: crate::daemon::InitOptions) -> Result<u8, Error> {
        let mut names = init.units.clone();
        names.extend(init.exit_with.clone());
        for name in &names {
            if !self.sup.knows(name) {
                let dir = self.sup.service_dir().display();
                return Err(Error::failed_hint(
                    format!("no unit named `{name}` in {dir}; nothing was started"),
                    format!(
                        "a unit is a file {dir}/{name}.service; `diakonos verify` lists the units"
                    ),
                ));
            }
        }
        if !names.is_empty() {
            let start = crate::protocol::Request::Start(names);
            self.sup.handle(Input::Request(None, start), Instant::now());
        }
        self.init = Some((init, None));
        self.run().map_err(super::loop_failed)?;
        Ok(self.init.as_ref().and_then(|(_, code)| *code).unwrap_or(0))
    }

    /// Container mode: once the exit policy says so, stop everything (in
    /// reverse dependency order) with the code to exit with.
    pub(super) fn check_exit_policy(&mut self, now: Instant) {
        let Some((init, code)) = &mut self.init else {
            return;
        };
        if code.is_some() || self.sup.exiting {
            return;
        }
        let decided = match &init.exit_with {
            Some(unit) => self.sup.ended_with(unit),
            None if init.never => None,
            None => self.sup.all_done(),
        };
        if let Some(exit) = decided {
            *code = Some(exit);
            if self.sup.is_killing() {
                // A stop signal already stops everything in order: another
                // Terminate would count as a second signal (no order).
                log::info!("exit policy met while stopping: exiting with {exit}");
                return;
            }
            log::info!("exit policy met: stopping every service, then exiting with {exit}");
            self.sup.handle(Input::Terminate, now);
            self.sup.run(now, &mut self.sys);
            self.after_pass(now);
        }
    }

    /// The end, once every service is stopped and every reply sent: the
    /// state file synced, the metrics file's last form, and a root
    /// daemon's notify socket in /run removed (nobody will send to it).
    pub(super) fn finish(&mut self) {
        self.state.sync();
        self.metrics
            .update(Instant::now(), true, &self.sup, &self.unit_timers);
        self.sys.home.remove_run_notify_socket();
    }
}
