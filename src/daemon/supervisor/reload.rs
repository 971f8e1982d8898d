//! Reload: a fresh read of the service directory applied to the table.

use super::*;

impl Supervisor {
    /// Applies a fresh read of the service directory: new units appear,
    /// removed ones are stopped and dropped, changed active ones restart
    /// with their new definition, everything else is untouched.
    pub fn reload(&mut self, loaded: LoadedDir) -> ReloadReport {
        self.reload_scoped(loaded, None)
    }

    /// [`Supervisor::reload`] limited to the units named in `scope` (when
    /// given): only they are added, changed or dropped (SPEC §18: `run`
    /// and `delete` load one unit without touching the others). A changed
    /// unit that runs is not restarted: its new definition waits for the
    /// next start or restart.
    pub fn reload_scoped(
        &mut self,
        mut loaded: LoadedDir,
        scope: Option<&[String]>,
    ) -> ReloadReport {
        if let Some(scope) = scope {
            loaded.units.retain(|name, _| scope.contains(name));
        }
        let in_scope = |name: &str| scope.is_none_or(|s| s.iter().any(|n| n == name));
        let mut report = ReloadReport::default();
        // A scoped load (`run`, `delete`) re-reads only its units.
        self.changed_on_disk.retain(|name| !in_scope(name));
        self.new_on_disk.retain(|(name, _)| !in_scope(name));
        let mut restart = Vec::new();
        let mut removed = Vec::new();
        for id in self.by_name.values().copied().collect::<Vec<_>>() {
            let name = &self.entries[id].name;
            if in_scope(name) && !loaded.units.contains_key(name) {
                removed.push(id);
                report.removed.push(name.clone());
                self.by_name.remove(&self.entries, id);
                self.entries[id].gone = true;
            }
        }
        for (name, result) in loaded.units {
            let Some(&id) = self.by_name.get(&self.entries, &name) else {
                if let Err(errors) = &result {
                    report
                        .invalid
                        .push((name.clone(), crate::unit::first_error(errors)));
                }
                report.added.push(name.clone());
                self.add_entry(name, result);
                continue;
            };
            let e = &mut self.entries[id];
            let active = e.svc.state.is_active();
            let stale = self.stale.remove(&name).is_some() && active;
            match split_load(result) {
                (Some(unit), None, _) => {
                    if e.unit.as_deref() == Some(&unit) && !stale {
                        // The file is (back to) the definition that runs:
                        // valid again after a broken edit, nothing to restart.
                        if e.load_error.is_some() {
                            e.clear_load_error();
                        }
                        e.next_unit = None;
                        continue;
                    }
                    report.changed.push(name.clone());
                    if active {
                        e.next_unit = Some(Box::new(unit));
                        e.load_error = None;
                        restart.push(id);
                    } else {
                        e.set_unit(unit, &mut self.shared);
                    }
                }
                (_, error, path) => {
                    let error = error.unwrap_or_default();
                    // Named at every reload, so `reload` keeps failing until
                    // the file is fixed.
                    report
                        .invalid
                        .push((name.clone(), crate::unit::headline(&error).to_owned()));
                    if e.load_error.as_deref() == Some(&error) {
                        continue;
                    }
                    // A running instance keeps its old definition; it cannot
                    // start again until the file is fixed.
                    e.load_error = Some(Box::new(error));
                    e.next_unit = None;
                    e.set_failed_file(path.unwrap_or_default());
                    if !active {
                        e.unit = None;
                    }
                }
            }
        }
        if scope.is_none() {
            self.warnings.clear();
            self.warnings.extend(loaded.warnings);
        }
        self.rebuild_graph();
        // Units that load but whose dependencies do not (a cycle, a missing
        // Requires) are invalid too: named with the others.
        for e in self.entries.iter().filter(|e| !e.gone && in_scope(&e.name)) {
            let named = report.invalid.iter().any(|(n, _)| *n == e.name);
            if let (Some(error), false) = (e.dep_error.as_deref(), named) {
                let line = crate::unit::headline(error).to_owned();
                report.invalid.push((e.name.clone(), line));
            }
        }
        if !removed.is_empty() {
            let set = self.stop(&removed);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Stop,
                ids: set,
                baseline: BTreeMap::new(),
            });
        }
        // A scoped load leaves a changed running unit on its old definition
        // until its next (re)start: `run --force` restarts it itself, once.
        if !restart.is_empty() && scope.is_none() {
            let mut set = self.graph.requirers_of(&restart);
            set.retain(|&id| restart.contains(&id) || self.entries[id].svc.state.is_active());
            self.stop(&set);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Restart { stopping: true },
                ids: set,
                baseline: BTreeMap::new(),
            });
        }
        self.dirty = true;
        self.changes += 1;
        report
    }
}
