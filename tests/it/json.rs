//! The `--json` documents scripts rely on (SPEC §5).

use crate::util::{sh, Home};

const UNIT_KEYS: [&str; 8] = [
    "name",
    "state",
    "pid",
    "uptime_secs",
    "restarts",
    "description",
    "last_exit",
    "reason",
];

#[test]
fn list_json_is_an_array_with_every_field_per_unit() {
    // `list --json` is one array; every unit has name, state, pid, uptime, restarts, description, last_exit, reason.
    let h = Home::new("list_json_is_an_array_with_every_field_per_unit");
    h.unit(
        "web",
        "[unit]\nDescription = \"Web server\"\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    h.unit("idle", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "broken",
        "[service]\nExecStart = \"sh -c 'exit 2'\"\nRestart = \"no\"\n",
    );
    h.unit("invalid", "[service]\nExecStrat = \"x\"\n");
    h.ok(&["start", "web", "broken"]);
    h.wait_state("broken", "failed");
    let list = h.json_list();
    let units = list.as_array().expect("an array");
    let names: Vec<&str> = units.iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(names, ["broken", "idle", "invalid", "web"]);
    for u in units {
        let obj = u.as_object().expect("an object per unit");
        for key in UNIT_KEYS {
            assert!(obj.contains_key(key), "`{key}` missing: {u}");
        }
        assert!(u["restarts"].is_u64(), "{u}");
        assert!(u["description"].is_string(), "{u}");
    }
    let by = |n: &str| units.iter().find(|u| u["name"] == n).expect("unit").clone();
    let web = by("web");
    assert_eq!(web["state"], "running");
    assert_eq!(web["description"], "Web server");
    assert!(web["pid"].is_u64() && web["uptime_secs"].is_u64(), "{web}");
    assert!(
        web["last_exit"].is_null() && web["reason"].is_null(),
        "{web}"
    );
    let idle = by("idle");
    assert_eq!(idle["state"], "inactive");
    assert!(
        idle["pid"].is_null() && idle["uptime_secs"].is_null(),
        "{idle}"
    );
    let broken = by("broken");
    assert_eq!(broken["last_exit"], serde_json::json!({"code": 2}));
    assert_eq!(broken["reason"], "exited with code 2");
    let invalid = by("invalid");
    assert_eq!(invalid["state"], "invalid");
    assert!(
        invalid["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ExecStrat")),
        "{invalid}"
    );
}

#[test]
fn status_json_adds_path_type_and_dependencies() {
    // `status --json` has the list fields plus path, type, enabled, dependencies and log path.
    let h = Home::new("status_json_adds_path_type_and_dependencies");
    h.unit("db", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit("cache", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "worker",
        &format!(
            "[unit]\nDescription = \"Worker\"\nRequires = [\"db\"]\nWants = [\"cache\"]\n[service]\nExecStart = {}\n",
            sh("exec sleep 1000")
        ),
    );
    h.ok(&["start", "worker"]);
    let v = h.status_json("worker");
    for key in UNIT_KEYS {
        assert!(v.get(key).is_some(), "`{key}` missing: {v}");
    }
    assert_eq!(v["name"], "worker");
    assert_eq!(v["state"], "running");
    assert_eq!(v["description"], "Worker");
    assert_eq!(
        v["path"],
        h.units.join("worker.service").display().to_string()
    );
    assert_eq!(v["type"], "simple");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["requires"], serde_json::json!(["db"]));
    assert_eq!(v["wants"], serde_json::json!(["cache"]));
    assert_eq!(
        v["log_path"],
        h.home.join("logs/worker.log").display().to_string()
    );
    let db = h.status_json("db");
    assert_eq!(db["required_by"], serde_json::json!(["worker"]));
}

#[test]
fn status_shows_the_failure_reason_for_humans() {
    // Human `status` of a failed unit shows its reason and last exit.
    let h = Home::new("status_shows_the_failure_reason_for_humans");
    h.unit(
        "app",
        "[service]\nRestart = \"no\"\nExecStart = \"sh -c 'echo boom; exit 3'\"\n",
    );
    h.ok(&["start", "app"]);
    h.wait_state("app", "failed");
    let out = h.ok(&["status", "app"]);
    assert!(out.contains("failed"), "{out}");
    assert!(out.contains("exited with code 3"), "{out}");
    assert!(out.contains("boom"), "last log lines missing: {out}");
}
