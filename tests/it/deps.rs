//! Requires, Wants and After across units: pulling in, ordering, failure
//! propagation, and graphs that cannot run.

use crate::util::{alive, gone, kill9, sh, Home, WAIT};

/// A long-running service that appends its pid to `NAME.started`.
fn sleeper(h: &Home, name: &str, unit_section: &str) {
    h.unit(
        name,
        &format!(
            "[unit]\n{unit_section}\n[service]\nExecStart = {}\n",
            sh(&format!("echo $$ >> {name}.started; exec sleep 1000"))
        ),
    );
}

#[test]
fn start_pulls_in_required_units_first() {
    // `start worker` also starts database, and database's process exists when worker starts.
    let h = Home::new("start_pulls_in_required_units_first");
    // database's command line carries a token the worker looks for in /proc;
    // the worker's own pattern `dbproc-toke[n]` cannot match itself.
    let token = format!("{}/dbproc-token", h.root.display());
    h.unit(
        "database",
        &format!(
            "[service]\nExecStart = {}\n",
            crate::util::toml_str(&format!("sh -c 'while :; do sleep 1; done' {token}"))
        ),
    );
    let pattern = format!("{}/dbproc-toke[n]", h.root.display());
    h.unit(
        "worker",
        &format!(
            "[unit]\nRequires = [\"database\"]\n[service]\nExecStart = {}\n",
            sh(&format!(
                "grep -l \"{pattern}\" /proc/[0-9]*/cmdline > db-seen 2>/dev/null; echo $$ >> worker.started; exec sleep 1000"
            ))
        ),
    );
    h.ok(&["start", "worker"]);
    assert_eq!(h.state("database"), "running");
    assert_eq!(h.state("worker"), "running");
    h.wait_until("worker to record its start", WAIT, || {
        !h.lines("worker.started").is_empty()
    });
    let db = h.pid("database");
    let seen = h.lines("db-seen");
    // (The database's shell forks `sleep 1` each second; until that child
    // execs it carries the token too, so a second match may appear.)
    assert!(
        seen.contains(&format!("/proc/{db}/cmdline")),
        "worker did not see database's process (pid {db}) when it started: {seen:?}"
    );
}

#[test]
fn independent_units_all_run_after_one_start() {
    // `start a b c` of unrelated units returns with all three running.
    let h = Home::new("independent_units_all_run_after_one_start");
    for name in ["a", "b", "c"] {
        h.unit(name, "[service]\nExecStart = \"sleep 1000\"\n");
    }
    h.ok(&["start", "a", "b", "c"]);
    for name in ["a", "b", "c"] {
        let u = h.unit_json(name);
        assert_eq!(u["state"], "running", "{u}");
        assert!(alive(u["pid"].as_i64().expect("pid") as i32));
    }
}

#[test]
fn independent_oneshots_start_in_parallel() {
    // Three oneshots that each wait for the other two to have started can only all succeed in parallel.
    let h = Home::new("independent_oneshots_start_in_parallel");
    for (me, x, y) in [("a", "b", "c"), ("b", "a", "c"), ("c", "a", "b")] {
        h.unit(
            me,
            &format!(
                "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = {}\n",
                sh(&format!(
                    "touch {me}.up; i=0; while [ ! -e {x}.up ] || [ ! -e {y}.up ]; do i=$((i+1)); [ $i -gt 500 ] && exit 1; sleep 0.01; done; exit 0"
                ))
            ),
        );
    }
    h.ok(&["start", "a", "b", "c"]);
    for name in ["a", "b", "c"] {
        assert_eq!(h.state(name), "exited");
    }
}

#[test]
fn wants_on_a_failing_unit_does_not_block_the_wanter() {
    // A wanted unit that cannot start fails alone; the unit that wants it starts.
    let h = Home::new("wants_on_a_failing_unit_does_not_block_the_wanter");
    h.unit(
        "cache",
        "[service]\nRestart = \"no\"\nExecStart = \"/nonexistent/cached\"\n",
    );
    h.unit(
        "flaky",
        "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = \"sh -c 'exit 1'\"\n",
    );
    sleeper(&h, "web", "Wants = [\"cache\", \"flaky\"]");
    h.ok(&["start", "web"]);
    assert_eq!(h.state("web"), "running");
    assert_eq!(h.state("cache"), "failed");
    assert_eq!(h.state("flaky"), "failed");
}

#[test]
fn requires_on_a_failing_unit_fails_the_dependent() {
    // A required unit that fails before it is up fails the start with "dependency database failed".
    let h = Home::new("requires_on_a_failing_unit_fails_the_dependent");
    h.unit(
        "database",
        "[service]\nType = \"oneshot\"\nRestart = \"no\"\nExecStart = \"sh -c 'exit 1'\"\n",
    );
    sleeper(&h, "worker", "Requires = [\"database\"]");
    let err = h.fails(1, &["start", "worker"]);
    assert!(err.contains("dependency database failed"), "{err}");
    let u = h.unit_json("worker");
    assert_eq!(u["state"], "failed", "{u}");
    assert_eq!(u["reason"], "dependency database failed", "{u}");
    assert!(h.lines("worker.started").is_empty(), "worker was launched");
}

#[test]
fn requires_on_a_unit_that_cannot_spawn_fails_the_dependent() {
    // A required unit whose program does not exist fails its dependent's start.
    let h = Home::new("requires_on_a_unit_that_cannot_spawn_fails_the_dependent");
    h.unit(
        "database",
        "[service]\nRestart = \"no\"\nExecStart = \"/nonexistent/postgres\"\n",
    );
    sleeper(&h, "worker", "Requires = [\"database\"]");
    let err = h.fails(1, &["start", "worker"]);
    assert!(err.contains("dependency database failed"), "{err}");
    assert!(h.lines("worker.started").is_empty(), "worker was launched");
}

#[test]
fn stop_takes_down_requirers_first() {
    // Stopping database stops worker first: worker's TERM trap writes before database's.
    let h = Home::new("stop_takes_down_requirers_first");
    crate::util::start_trapped_worker_and_database(&h);
    let (db, worker) = (h.pid("database"), h.pid("worker"));
    h.ok(&["stop", "database"]);
    assert!(gone(db) && gone(worker));
    assert_eq!(h.lines("order"), ["worker", "database"]);
    assert_eq!(h.state("worker"), "inactive");
    assert_eq!(h.state("database"), "inactive");
}

#[test]
fn a_restarting_dependency_leaves_its_dependent_running() {
    // A required unit that crashes and is restarted does not touch the unit that requires it.
    let h = Home::new("a_restarting_dependency_leaves_its_dependent_running");
    h.unit(
        "database",
        "[service]\nRestart = \"always\"\nRestartSec = 0\nExecStart = \"sleep 1000\"\n",
    );
    sleeper(&h, "worker", "Requires = [\"database\"]");
    h.ok(&["start", "worker"]);
    h.wait_until("worker to record its start", WAIT, || {
        h.lines("worker.started").len() == 1
    });
    let (db, worker) = (h.pid("database"), h.pid("worker"));
    kill9(db);
    h.wait_until("database to be back with a new pid", WAIT, || {
        let u = h.unit_json("database");
        u["state"] == "running" && u["restarts"] == 1 && u["pid"] != db
    });
    let w = h.unit_json("worker");
    assert_eq!(w["state"], "running", "{w}");
    assert_eq!(w["pid"], worker, "{w}");
    assert_eq!(w["restarts"], 0, "{w}");
    assert_eq!(h.lines("worker.started").len(), 1);
}

#[test]
fn a_dependency_that_fails_for_good_takes_its_dependent_down() {
    // When a required unit ends failed, the running dependent is stopped and fails too.
    let h = Home::new("a_dependency_that_fails_for_good_takes_its_dependent_down");
    h.unit(
        "database",
        "[service]\nRestart = \"no\"\nExecStart = \"sleep 1000\"\n",
    );
    sleeper(&h, "worker", "Requires = [\"database\"]");
    h.ok(&["start", "worker"]);
    let worker = h.pid("worker");
    kill9(h.pid("database"));
    h.wait_state("worker", "failed");
    let w = h.unit_json("worker");
    assert_eq!(w["reason"], "dependency database failed", "{w}");
    assert!(w["pid"].is_null(), "{w}");
    h.wait_until("worker's process to be gone", WAIT, || gone(worker));
    let d = h.unit_json("database");
    assert_eq!(d["state"], "failed", "{d}");
    assert_eq!(
        d["last_exit"],
        serde_json::json!({"signal": "SIGKILL"}),
        "{d}"
    );
}

#[test]
fn an_invalid_unit_is_listed_and_the_others_still_start() {
    // A unit file that does not parse shows as invalid; the rest of the directory works.
    let h = Home::new("an_invalid_unit_is_listed_and_the_others_still_start");
    h.unit(
        "broken",
        "[service]\nExecStart = \"sleep 1\"\nRestart = \"sometimes\"\n",
    );
    h.unit("garbage", "this is [not toml\n");
    h.unit("good", "[service]\nExecStart = \"sleep 1000\"\n");
    for name in ["broken", "garbage"] {
        let u = h.unit_json(name);
        assert_eq!(u["state"], "invalid", "{u}");
        let reason = u["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("{name}.service:")), "{u}");
    }
    h.ok(&["start", "good"]);
    assert_eq!(h.state("good"), "running");
    let err = h.fails(1, &["start", "broken"]);
    assert!(err.contains("broken") && err.contains("invalid"), "{err}");
}

#[test]
fn cycle_units_are_invalid_and_start_names_the_cycle() {
    // Units in a Requires cycle are invalid, and starting one fails with the cycle's path.
    let h = Home::new("cycle_units_are_invalid_and_start_names_the_cycle");
    h.unit(
        "a",
        "[unit]\nRequires = [\"b\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.unit(
        "b",
        "[unit]\nRequires = [\"a\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.unit("c", "[service]\nExecStart = \"sleep 1000\"\n");
    assert_eq!(h.state("a"), "invalid");
    assert_eq!(h.state("b"), "invalid");
    let err = h.fails(1, &["start", "a"]);
    assert!(
        err.contains("a -> b -> a") || err.contains("b -> a -> b"),
        "{err}"
    );
    h.ok(&["start", "c"]);
    assert_eq!(h.state("c"), "running");
}

#[test]
fn requires_on_a_missing_unit_makes_the_unit_invalid() {
    // A unit that Requires a unit with no file is invalid and does not start.
    let h = Home::new("requires_on_a_missing_unit_makes_the_unit_invalid");
    sleeper(&h, "worker", "Requires = [\"nothere\"]");
    let u = h.unit_json("worker");
    assert_eq!(u["state"], "invalid", "{u}");
    assert!(
        u["reason"].as_str().unwrap_or_default().contains("nothere"),
        "{u}"
    );
    let err = h.fails(1, &["start", "worker"]);
    assert!(err.contains("nothere"), "{err}");
}

#[test]
fn required_oneshot_finishes_before_the_dependent_starts() {
    // A dependent of a oneshot starts only after the oneshot exited 0.
    let h = Home::new("required_oneshot_finishes_before_the_dependent_starts");
    h.unit(
        "migrate",
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("sleep 0.2; echo migrate >> order")
        ),
    );
    h.unit(
        "worker",
        &format!(
            "[unit]\nRequires = [\"migrate\"]\n[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh("echo worker >> order")
        ),
    );
    h.ok(&["start", "worker"]);
    assert_eq!(h.lines("order"), ["migrate", "worker"]);
    assert_eq!(h.state("migrate"), "exited");
}

#[test]
fn stop_goes_down_a_chain_in_reverse_order() {
    // With c -> b -> a (Requires), stopping a stops c, then b, then a.
    let h = Home::new("stop_goes_down_a_chain_in_reverse_order");
    let trap = |name: &str, requires: &str| {
        format!(
            "[unit]\n{requires}\n[service]\nExecStart = {}\n",
            sh(&format!(
                "trap \"echo {name} >> order; exit 0\" TERM; echo $$ >> {name}.started; while :; do sleep 0.05; done"
            ))
        )
    };
    h.unit("a", &trap("a", ""));
    h.unit("b", &trap("b", "Requires = [\"a\"]"));
    h.unit("c", &trap("c", "Requires = [\"b\"]"));
    h.ok(&["start", "c"]);
    h.wait_until("three traps to be set", WAIT, || {
        ["a", "b", "c"]
            .iter()
            .all(|n| !h.lines(&format!("{n}.started")).is_empty())
    });
    h.ok(&["stop", "a"]);
    assert_eq!(h.lines("order"), ["c", "b", "a"]);
}

#[test]
fn wants_on_a_missing_unit_is_ignored() {
    // Wants naming a unit with no file is only a warning; the unit starts.
    let h = Home::new("wants_on_a_missing_unit_is_ignored");
    sleeper(&h, "web", "Wants = [\"nothere\"]");
    h.ok(&["start", "web"]);
    assert_eq!(h.state("web"), "running");
}

#[test]
fn stopping_a_wanted_unit_leaves_the_wanter_running() {
    // Wants pulls a unit in, but stopping it does not stop the unit that wants it.
    let h = Home::new("stopping_a_wanted_unit_leaves_the_wanter_running");
    sleeper(&h, "cache", "");
    sleeper(&h, "web", "Wants = [\"cache\"]");
    h.ok(&["start", "web"]);
    assert_eq!(h.state("cache"), "running", "Wants did not pull cache in");
    let web = h.pid("web");
    h.ok(&["stop", "cache"]);
    assert_eq!(h.state("cache"), "inactive");
    assert_eq!(h.pid("web"), web);
}

#[test]
fn a_failure_propagates_down_a_chain_of_requires() {
    // With c -> b -> a (Requires), a failing for good fails b and then c, each naming its own dependency.
    let h = Home::new("a_failure_propagates_down_a_chain_of_requires");
    h.unit(
        "a",
        "[service]\nRestart = \"no\"\nExecStart = \"sleep 1000\"\n",
    );
    sleeper(&h, "b", "Requires = [\"a\"]");
    sleeper(&h, "c", "Requires = [\"b\"]");
    h.ok(&["start", "c"]);
    kill9(h.pid("a"));
    h.wait_state("c", "failed");
    h.wait_state("b", "failed");
    assert_eq!(h.unit_json("b")["reason"], "dependency a failed");
    assert_eq!(h.unit_json("c")["reason"], "dependency b failed");
}

#[test]
fn restart_of_a_dependency_brings_its_requirers_back() {
    // `restart database` stops worker first, and worker is running again (new pid) when restart returns.
    let h = Home::new("restart_of_a_dependency_brings_its_requirers_back");
    sleeper(&h, "database", "");
    sleeper(&h, "worker", "Requires = [\"database\"]");
    h.ok(&["start", "worker"]);
    let (db, worker) = (h.pid("database"), h.pid("worker"));
    h.ok(&["restart", "database"]);
    for (name, old) in [("database", db), ("worker", worker)] {
        let u = h.unit_json(name);
        assert_eq!(u["state"], "running", "{u}");
        assert_ne!(u["pid"], old, "{name} was not restarted: {u}");
        assert!(gone(old));
    }
}

#[test]
fn requires_on_an_invalid_unit_fails_the_start() {
    // A unit that Requires a unit whose file does not load cannot start, and says which dependency failed.
    let h = Home::new("requires_on_an_invalid_unit_fails_the_start");
    h.unit("database", "[service]\nExecStrat = \"postgres\"\n");
    sleeper(&h, "worker", "Requires = [\"database\"]");
    let err = h.fails(1, &["start", "worker"]);
    assert!(err.contains("database"), "{err}");
    assert!(h.lines("worker.started").is_empty(), "worker was launched");
}

#[test]
fn a_removed_unit_that_others_required_is_gone_for_them_once_it_is_down() {
    // b Requires a, both run; a's file is removed and reloaded: both stop, b
    // is invalid (it Requires a unit that does not exist: `reload` says so
    // and fails), and a `start b` is refused rather than starting a's old
    // definition unseen.
    let h = Home::new("a_removed_unit_that_others_required");
    sleeper(&h, "a", "");
    sleeper(&h, "b", "Requires = [\"a\"]");
    h.ok(&["start", "b"]);
    let a = h.pid("a");
    std::fs::remove_file(h.units.join("a.service")).expect("remove a.service");
    let reload = h.cmd(&["reload"]);
    assert_eq!(reload.status.code(), Some(1));
    let said = crate::util::stdout(&reload);
    assert!(said.contains("removed: a\ninvalid: b"), "{said}");
    h.wait_until("a stopped", WAIT, || gone(a));
    h.wait_until("b invalid", WAIT, || h.state("b") == "invalid");
    let err = h.fails(1, &["start", "b"]);
    assert!(err.contains("Requires `a`"), "{err}");
    assert_eq!(h.lines("a.started").len(), 1, "a was started again");
}

#[test]
fn a_start_right_after_a_reload_keeps_the_reloads_restart() {
    // app Requires db; db's file changes and `reload` restarts both. A
    // `start app` at once (while app goes down, db waits its turn) must not
    // cancel db's restart: db runs its new definition.
    let h = Home::new("a_start_right_after_a_reload_keeps");
    sleeper(&h, "db", "");
    // app goes down only once the test says so: the start comes while it
    // is stopping, with db's stop queued behind it.
    h.unit(
        "app",
        &format!(
            "[unit]\nRequires = [\"db\"]\n[service]\nExecStart = {}\n",
            sh("trap 'until [ -e go ]; do sleep 0.01; done; exit 0' TERM; echo $$ >> app.started; sleep 1000 & wait")
        ),
    );
    // The daemon this starts logs each request (to see the second start).
    let mut first = h.command(&["start", "app"]);
    first.env("DIAKONOS_LOG", "debug");
    assert!(h.run(first).status.success(), "the first start");
    h.wait_lines("app.started", 1);
    let starts = || {
        std::fs::read_to_string(h.home.join("daemon.log"))
            .map_or(0, |l| l.matches(": Start\n").count())
    };
    let old = h.pid("db");
    h.unit(
        "db",
        &format!(
            "[service]\nExecStart = {}\n",
            sh("echo $$ >> db.started; echo new >> db.new; exec sleep 1000")
        ),
    );
    h.ok(&["reload"]);
    h.wait_until("app stopping", WAIT, || h.state("app") == "stopping");
    let start = h
        .command(&["start", "app"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start app");
    let start = crate::util::Background(start);
    h.wait_until("the second start to be asked", WAIT, || starts() == 2);
    std::fs::write(h.units.join("go"), "").expect("write go");
    let mut start = start;
    assert!(
        start.0.wait().expect("start app").success(),
        "start app failed"
    );
    h.wait_lines("db.new", 1);
    h.wait_until("the old db gone", WAIT, || gone(old));
    h.wait_until("app and db running", WAIT, || {
        h.state("app") == "running" && h.state("db") == "running"
    });
    let pid = h.pid("db");
    assert_eq!(h.lines("db.started").last(), Some(&pid.to_string()));
    assert!(alive(pid));
}

#[test]
fn a_dependent_of_a_removed_unit_cannot_start_while_the_removed_one_stops() {
    // base's file is removed while mid (Requires base) and top (Requires mid) run; base ignores SIGTERM, so it is still stopping when `start mid` and `start top` come: mid is invalid from the reload on, both starts are refused, and base is not started again once its stop ends.
    let h = Home::new("dependent_of_removed_unit");
    h.unit(
        "base",
        &format!(
            "[service]\nTimeoutStopSec = 30\nExecStart = {}\n",
            sh("trap 'echo term >> base.terms' TERM; echo $$ >> base.pid; while :; do sleep 0.1; done")
        ),
    );
    sleeper(&h, "mid", "Requires = [\"base\"]");
    sleeper(&h, "top", "Requires = [\"mid\"]");
    h.ok(&["start", "top"]);
    let base = h.written_pid("base.pid");
    std::fs::remove_file(h.path("base.service")).expect("remove base.service");
    let reload = h.cmd(&["reload"]);
    assert_eq!(reload.status.code(), Some(1));
    let said = crate::util::stdout(&reload);
    assert!(said.contains("removed: base\ninvalid: mid"), "{said}");
    h.wait_written("base.terms", "base's SIGTERM");
    let refused = h.fails(1, &["start", "mid"]);
    assert!(refused.contains("Requires `base`"), "{refused}");
    h.fails(1, &["start", "top"]);
    assert_eq!(h.state("mid"), "invalid");
    assert!(alive(base), "base should still be stopping");
    kill9(base);
    h.wait_until("base gone", WAIT, || gone(base));
    h.stays(
        "base not started again",
        std::time::Duration::from_secs(1),
        || h.lines("base.pid").len() == 1,
    );
    assert_eq!(h.lines("mid.started").len(), 1, "mid started again");
}
