//! Failure hooks (SPEC §11): OnFailure and OnRestart units started with
//! the failed unit's context in `DIAKONOS_MONITOR_*`, rate-limited.

use crate::util::*;

fn alert(h: &Home, name: &str) {
    h.unit(
        name,
        &format!(
            "[service]\nType = \"oneshot\"\nExecStart = {}\n",
            sh(&format!(
                "echo \"$DIAKONOS_MONITOR_UNIT|$DIAKONOS_MONITOR_RESULT|${{DIAKONOS_MONITOR_EXIT_CODE-}}|${{DIAKONOS_MONITOR_SIGNAL-}}|$DIAKONOS_MONITOR_RESTARTS|$DIAKONOS_MONITOR_REASON\" >> {name}.seen"
            ))
        ),
    );
}

#[test]
fn on_failure_hook_gets_the_context_of_the_failure() {
    let h = Home::new("hooks_on_failure");
    alert(&h, "alert");
    h.unit(
        "job",
        "[unit]\nOnFailure = [\"alert\"]\n[service]\nExecStart = \"sh -c 'exit 7'\"\nRestart = \"no\"\n",
    );
    h.ok(&["start", "job"]);
    h.wait_state("job", "failed");
    h.wait_lines("alert.seen", 1);
    assert_eq!(
        h.lines("alert.seen"),
        vec!["job|exit-code|7||0|exited with code 7".to_owned()]
    );
    // Its next start is an ordinary one: no DIAKONOS_MONITOR_* left over.
    // (Once the hook's run is over: a start of a oneshot still running
    // starts nothing.)
    h.wait_state("alert", "exited");
    h.ok(&["start", "alert"]);
    h.wait_lines("alert.seen", 2);
    assert_eq!(h.lines("alert.seen")[1], "|||||");
}

#[test]
fn on_restart_hooks_are_rate_limited() {
    // Every exit is restarted; the hook runs once in HookRateLimitSec.
    let h = Home::new("hooks_on_restart");
    alert(&h, "note");
    h.unit(
        "flaky",
        &format!(
            "[unit]\nOnRestart = [\"note\"]\nStartLimitBurst = 0\n[service]\nRestartSec = 0.1\nExecStart = {}\n",
            sh("echo x >> runs; kill -TERM $$")
        ),
    );
    h.ok(&["start", "flaky"]);
    h.wait_lines("note.seen", 1);
    h.wait_until("five runs", WAIT, || h.lines("runs").len() >= 5);
    let seen = h.lines("note.seen");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("flaky|signal||SIGTERM|"), "{seen:?}");
    // The skipped triggers are shown, not only logged: the first restart
    // started the hook, later ones in the window were skipped.
    let skipped = |v: &serde_json::Value| v["hooks_skipped"].as_u64().unwrap_or(0);
    let listed = h.unit_json("flaky");
    assert!(skipped(&listed) >= 3, "{listed}");
    let status = h.status_json("flaky");
    assert!(skipped(&status) >= skipped(&listed), "{status}");
    let text = h.ok(&["status", "flaky"]);
    assert!(
        text.lines().any(
            |l| l.trim_start().starts_with("hooks:") && l.contains("skipped (HookRateLimitSec")
        ),
        "{text}"
    );
    h.ok(&["stop", "flaky"]);
}

#[test]
fn on_restart_does_not_fire_for_an_exit_the_start_limit_will_not_restart() {
    // StartLimitBurst = 1: the first exit is not restarted (the start
    // limit would refuse it), so OnRestart stays quiet and OnFailure runs.
    let h = Home::new("on_restart_does_not_fire_past_the_start_limit");
    alert(&h, "note");
    alert(&h, "alert");
    h.unit(
        "once",
        &format!(
            "[unit]\nOnRestart = [\"note\"]\nOnFailure = [\"alert\"]\nStartLimitBurst = 1\n\
             StartLimitIntervalSec = 60\nHookRateLimitSec = 0\n[service]\nRestartSec = 0.1\nExecStart = {}\n",
            sh("exit 9")
        ),
    );
    let _ = h.cmd(&["start", "once"]);
    h.wait_state("once", "failed");
    h.wait_lines("alert.seen", 1);
    assert_eq!(
        h.lines("alert.seen"),
        ["once|start-limit|9||0|start limit hit"]
    );
    h.wait_state("alert", "exited");
    assert!(h.lines("note.seen").is_empty(), "OnRestart fired");
}
