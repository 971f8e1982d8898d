//! Reload: a fresh read of the service directory applied to the table.

use super::*;

impl Supervisor {
    /// Applies a fresh read of the service directory: new units appear,
    /// removed ones are stopped and dropped, changed active ones restart
    /// with their new definition, everything else is untouched.
    pub fn reload(&mut self, loaded: LoadedDir) -> ReloadReport {
        let mut report = ReloadReport::default();
        self.changed_on_disk.clear();
        let mut restart = Vec::new();
        let mut removed = Vec::new();
        for (name, id) in self.by_name.clone() {
            if !loaded.units.contains_key(&name) {
                removed.push(id);
                report.removed.push(name.clone());
                self.by_name.remove(&name);
                self.entries[id].gone = true;
            }
        }
        for (name, result) in loaded.units {
            let Some(&id) = self.by_name.get(&name) else {
                if let Err(errors) = &result {
                    report.invalid.push((name.clone(), first_error(errors)));
                }
                report.added.push(name.clone());
                self.add_entry(name, result);
                continue;
            };
            let e = &mut self.entries[id];
            let active = e.svc.state.is_active();
            match split_load(result) {
                (Some(unit), None, _) => {
                    if e.unit.as_deref() == Some(&unit) && e.load_error.is_none() {
                        e.next_unit = None;
                        continue;
                    }
                    report.changed.push(name.clone());
                    if active {
                        e.next_unit = Some(Box::new(unit));
                        e.load_error = None;
                        restart.push(id);
                    } else {
                        e.set_unit(unit);
                    }
                }
                (_, error, path) => {
                    let error = error.unwrap_or_default();
                    if e.load_error.as_ref() == Some(&error) {
                        // Still invalid: named again, so `reload` keeps
                        // failing until the file is fixed.
                        report.invalid.push((
                            name.clone(),
                            error.lines().next().unwrap_or_default().to_owned(),
                        ));
                        continue;
                    }
                    report.invalid.push((
                        name.clone(),
                        error.lines().next().unwrap_or_default().to_owned(),
                    ));
                    // A running instance keeps its old definition; it cannot
                    // start again until the file is fixed.
                    e.load_error = Some(error);
                    e.next_unit = None;
                    e.path = path;
                    if !active {
                        e.unit = None;
                    }
                }
            }
        }
        self.warnings.clear();
        self.warnings.extend(loaded.warnings);
        self.rebuild_graph();
        if !removed.is_empty() {
            let set = self.stop(&removed);
            self.jobs.push(Job {
                conn: None,
                kind: JobKind::Stop,
                ids: set,
                baseline: BTreeMap::new(),
            });
        }
        if !restart.is_empty() {
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
        report
    }
}
