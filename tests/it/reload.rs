//! `reload` and SIGHUP (SPEC §3, §7): added, changed and removed unit files, broken edits.

use crate::durability::sleeper;
use crate::util::{alive, gone, sh, Home, WAIT};
use std::fs;

#[test]
fn reload_applies_added_changed_and_removed_units() {
    // `reload` adds new units, restarts changed running ones, stops removed ones, and leaves the rest alone.
    let h = Home::new("reload_applies_added_changed_and_removed_units");
    sleeper(&h, "keep");
    sleeper(&h, "change");
    sleeper(&h, "drop");
    h.ok(&["start", "keep", "change", "drop"]);
    let (keep, change, dropped) = (h.pid("keep"), h.pid("change"), h.pid("drop"));
    sleeper(&h, "fresh");
    h.unit(
        "change",
        &format!(
            "[unit]\nDescription = \"changed\"\n[service]\nRestartSec = 0\nExecStart = {}\n",
            sh("echo $$ >> change.starts; exec sleep 1000")
        ),
    );
    fs::remove_file(h.units.join("drop.service")).expect("rm drop.service");
    let out = h.ok(&["reload"]);
    assert!(out.contains("added: fresh"), "{out}");
    assert!(out.contains("changed: change"), "{out}");
    assert!(out.contains("removed: drop"), "{out}");
    assert!(!out.contains("keep"), "{out}");
    h.wait_until("change to run its new definition", WAIT, || {
        let u = h.unit_json("change");
        u["state"] == "running" && u["pid"] != change && u["description"] == "changed"
    });
    assert_eq!(h.pid("keep"), keep);
    assert!(gone(change), "the old `change` process survived");
    h.wait_until("drop's process to be gone", WAIT, || gone(dropped));
    let names = h.listed_names();
    assert_eq!(names, ["change", "fresh", "keep"]);
    assert_eq!(h.state("fresh"), "inactive");
    let again = h.ok(&["reload"]);
    assert_eq!(again.trim(), "nothing changed");
}

#[test]
fn sighup_reloads_the_service_dir() {
    // SIGHUP to the daemon works like `reload`.
    let h = Home::new("sighup_reloads_the_service_dir");
    sleeper(&h, "web");
    h.ok(&["list"]);
    sleeper(&h, "fresh");
    let daemon = h.daemon_pid().expect("daemon pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
    h.wait_until("fresh to appear", WAIT, || {
        h.json_list()
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u["name"] == "fresh"))
    });
    assert_eq!(h.daemon_pid(), Some(daemon));
}

#[test]
fn reload_keeps_a_running_unit_whose_new_file_is_broken() {
    // A typo in the file of a running unit does not stop it on reload; the reload reports it invalid.
    let h = Home::new("reload_keeps_a_running_unit_whose_new_file_is_broken");
    sleeper(&h, "web");
    h.ok(&["start", "web"]);
    let pid = h.pid("web");
    h.unit(
        "web",
        "[service]\nExecStart = \"sleep 1000\"\nRestrat = \"no\"\n",
    );
    // The reload fails (exit 1) naming web; web keeps running.
    let out = h.cmd(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("invalid: web"), "{out}");
    let u = h.unit_json("web");
    assert_eq!(u["pid"], pid, "{u}");
    assert!(alive(pid));
    let status = h.ok(&["status", "web"]);
    assert!(
        status.contains("Restrat"),
        "status does not explain: {status}"
    );
    h.ok(&["stop", "web"]);
    assert!(gone(pid));
    let err = h.fails(1, &["start", "web"]);
    assert!(err.contains("Restrat"), "{err}");
}

#[test]
fn a_broken_edit_undone_is_not_a_change() {
    // A running unit's file broken, reloaded, then put back as it was: the
    // second reload changes nothing (no restart) and the unit is valid again.
    let h = Home::new("a_broken_edit_undone_is_not_a_change");
    sleeper(&h, "web");
    let good = std::fs::read_to_string(h.units.join("web.service")).expect("web's file");
    h.ok(&["start", "web"]);
    let pid = h.pid("web");
    h.unit("web", &format!("{good}Restrat = \"no\"\n"));
    h.fails(1, &["reload"]);
    h.unit("web", &good);
    let out = h.ok(&["reload"]);
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(h.pid("web"), pid);
    let status = h.ok(&["status", "web"]);
    assert!(!status.contains("Restrat"), "{status}");
    h.ok(&["restart", "web"]);
    assert_ne!(h.pid("web"), pid);
}
