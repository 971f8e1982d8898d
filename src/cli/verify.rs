//! `verify`: unit files checked here, without starting a daemon (SPEC §5):
//! each file, the dependency graph and what `start` would fail on.

use super::*;

/// The directory `verify` checks: the one named, else the running daemon's
/// (asked, never started), else the default `./services`.
pub(super) fn verify_dir(g: &Global, out: &render::Output) -> PathBuf {
    verify_target(g, out, false).0
}

/// [`verify_dir`], and the daemon of that directory when one runs (its
/// PATH and uid are what services get); with `named_too`, also asked when
/// the directory was named.
fn verify_target(
    g: &Global,
    out: &render::Output,
    named_too: bool,
) -> (PathBuf, Option<DaemonInfo>) {
    let (dir, named) = paths::service_dir(g.service_dir.clone());
    if named && !named_too {
        return (dir, None);
    }
    if named {
        let daemon = match client::request(g, Request::DaemonStatus, false) {
            Ok(Response::Daemon(info)) if info.service_dir == paths::absolute(&dir) => Some(*info),
            _ => None,
        };
        return (dir, daemon);
    }
    match client::request(g, Request::DaemonStatus, false) {
        Ok(Response::Daemon(info)) => (info.service_dir.clone(), Some(*info)),
        Err(Error::NotRunning(_)) => (dir, None),
        Ok(other) => {
            out.warning(&format!(
                "{}; checking {}",
                crate::unit::headline(&client::unexpected(&other).to_string()),
                dir.display()
            ));
            (dir, None)
        }
        Err(e) => {
            out.warning(&format!(
                "cannot ask the daemon for its service directory ({}); checking {}",
                crate::unit::headline(&e.to_string()),
                dir.display()
            ));
            (dir, None)
        }
    }
}

/// `verify`: load and check the unit files here, without a daemon: each
/// file, the dependency graph ([`graph::check`], as the daemon does) and
/// what `start` would fail on on this host.
pub(super) fn verify(g: &Global, names: &[String], out: &render::Output) -> Result<(), Error> {
    let (dir, daemon) = verify_target(g, out, true);
    let loaded = unit::load_dir(&dir, &unit::hostname()).map_err(|e| {
        Error::failed_hint(
            format!("cannot read the service directory {}: {e}", dir.display()),
            "pass --service-dir DIR or set DIAKONOS_SERVICE_DIR",
        )
    })?;
    for name in names {
        if !loaded.units.contains_key(name) {
            return Err(Error::failed_hint(
                format!("no unit named `{name}` in {}", dir.display()),
                format!("a unit is a file {}/{name}.service", dir.display()),
            ));
        }
    }
    let units: Vec<(&String, &Result<unit::Unit, Vec<unit::UnitError>>)> =
        loaded.units.iter().collect();
    let no_path = PathBuf::new();
    let inputs: Vec<DepInput<'_>> = units
        .iter()
        .map(|&(name, result)| match result {
            Ok(u) => DepInput {
                name,
                file: &u.path,
                requires: &u.requires,
                wants: &u.wants,
                after: &u.after,
                conflicts: &u.conflicts,
            },
            Err(errors) => DepInput {
                name,
                file: errors.first().map_or(&no_path, |e| &e.path),
                requires: &[],
                wants: &[],
                after: &[],
                conflicts: &[],
            },
        })
        .collect();
    let (_, findings) = graph::check(&inputs, &dir);
    let blocked = blocked_by_requires(&units, &findings.errors);
    let chosen = |n: &str| names.is_empty() || names.iter().any(|x| x == n);
    let mut bad = 0;
    let mut good = 0;
    // A unit's own warnings (its file's, a missing Wants) are shown with
    // the unit, only for the units asked about; the directory's always.
    let unit_warnings: crate::hash::HashSet<String> = units
        .iter()
        .filter_map(|(_, result)| result.as_ref().ok())
        .flat_map(|u| u.source.warnings.iter().map(ToString::to_string))
        .collect();
    for w in loaded
        .warnings
        .iter()
        .filter(|w| !unit_warnings.contains(*w))
    {
        out.warning(w);
    }
    for (id, w) in &findings.warnings {
        if units.get(*id).is_some_and(|(name, _)| chosen(name)) {
            out.warning(w);
        }
    }
    // A cycle is an error of each of its members, told once.
    let mut told = crate::hash::HashSet::default();
    // What `start` would fail on here is checked against the PATH services
    // get: the running daemon's (it spawns them), else this command's, or
    // the default when it has none; as the user they run as.
    let services = daemon.as_ref().and_then(|d| d.services.as_deref());
    let path_env = match services {
        Some(env) => env.path.clone().into(),
        None => std::env::var_os("PATH")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| paths::DEFAULT_PATH.into()),
    };
    let daemon_uid = services.map(|env| env.uid);
    for (i, ((name, result), dep_error)) in units.iter().zip(&findings.errors).enumerate() {
        if !chosen(name) {
            continue;
        }
        // As the daemon's `status` shows them: the file's errors, then its
        // dependency errors; then what this host would fail on.
        let mut errors: Vec<String> = match result {
            Ok(_) => Vec::new(),
            Err(load_errors) => load_errors.iter().map(ToString::to_string).collect(),
        };
        errors.extend(dep_error.iter().flat_map(|e| e.lines().map(str::to_owned)));
        if let (Ok(unit), Some(why)) = (result, &blocked[i]) {
            errors.push(format!("{}: {why}", unit.path.display()));
        }
        if let Ok(unit) = result {
            for w in &unit.source.warnings {
                out.warning(&w.to_string());
            }
            // A hook that names no unit would never run, silently.
            let t = &unit.triggers;
            let hooks = [("OnFailure", &t.on_failure), ("OnRestart", &t.on_restart)];
            for (key, names) in hooks {
                for hook in names.iter().filter(|h| !loaded.units.contains_key(*h)) {
                    out.warning(&format!(
                        "{name}: {key} `{hook}`, which does not exist: the hook would never run"
                    ));
                }
            }
            errors.extend(
                unit::check_host_as(unit, &path_env, daemon_uid)
                    .iter()
                    .map(ToString::to_string),
            );
        }
        for err in &errors {
            if told.insert(err.clone()) {
                out.error_block(err);
            }
        }
        if let Some(next) = result.as_ref().ok().and_then(|u| next_elapses(u, 3)) {
            out.note(&format!("{name}: next elapses: {}", next.join(", ")));
        }
        if errors.is_empty() {
            good += 1;
        } else {
            bad += 1;
        }
    }
    if bad > 0 {
        return Err(Error::failed(format!(
            "{bad} of {} unit(s) in {} have errors",
            bad + good,
            dir.display()
        )));
    }
    out.note(&format!("{good} unit(s) in {} are valid", dir.display()));
    Ok(())
}

/// Units that load but cannot start because something they Require
/// (directly, or through units that load) does not load or has dependency
/// errors: by unit index, why, naming the first such Requires.
fn blocked_by_requires(
    units: &[(&String, &Result<unit::Unit, Vec<unit::UnitError>>)],
    dep_errors: &[Option<String>],
) -> Vec<Option<String>> {
    let mut blocked: Vec<Option<String>> = vec![None; units.len()];
    let broken = |i: usize| units[i].1.is_err() || dep_errors.get(i).is_some_and(Option::is_some);
    loop {
        let mut more = false;
        for (i, &(_, result)) in units.iter().enumerate() {
            let Ok(unit) = result else { continue };
            if blocked[i].is_some() || broken(i) {
                continue;
            }
            let found = unit.requires.iter().find_map(|r| {
                // `units` is in name order (a BTreeMap's).
                let j = units.binary_search_by(|(n, _)| n.as_str().cmp(r)).ok()?;
                if units[j].1.is_err() {
                    Some(format!(
                        "Requires `{r}`, which does not load; it cannot start until `{r}` is fixed"
                    ))
                } else if broken(j) || blocked[j].is_some() {
                    Some(format!(
                        "Requires `{r}`, which cannot start (`diakonos verify {r}` says why)"
                    ))
                } else {
                    None
                }
            });
            if found.is_some() {
                blocked[i] = found;
                more = true;
            }
        }
        if !more {
            return blocked;
        }
    }
}

/// The next `n` elapses of a unit's OnCalendar (all of its expressions), from now, as RFC 3339 in
/// its zone (for `verify`).
fn next_elapses(u: &unit::Unit, n: usize) -> Option<Vec<String>> {
    let timer = u.timer.as_deref()?;
    let tz = unit::zone(&timer.time_zone)?;
    // Not jiff's `Timestamp::now`: its `expect` pulls jiff's error
    // printer (14 KiB) into the static binary.
    let mut at = i64::try_from(crate::utc::unix_now_ms()).ok()?;
    let mut out = Vec::new();
    for _ in 0..n {
        // The earliest of every expression of the list.
        at = timer.next_calendar(at)?;
        // By hand, not strftime (whose formatter cost the static binary
        // ~10 KiB for this one line), nor jiff's `Zoned`.
        let secs = at.div_euclid(1000);
        let off = unit::offset_at(&tz, secs);
        let sign = if off < 0 { '-' } else { '+' };
        let abs = off.unsigned_abs();
        out.push(format!(
            "{}{sign}{:02}:{:02}",
            crate::utc::date_time(secs + off),
            abs / 3600,
            abs / 60 % 60
        ));
    }
    Some(out)
}
