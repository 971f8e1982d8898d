//! `startup [--print]` (SPEC §16): the boot entry names the absolute binary,
//! `--home` and `--service-dir`; installing it goes to the user's crontab
//! (here a stand-in `crontab` on PATH, so no real crontab is touched).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::util::{stdout, Home};

#[test]
fn startup_print_shows_the_crontab_line_with_absolute_paths() {
    // The line starts the daemon detached with this home and service dir.
    let h = Home::new("startup_print_shows_the_crontab_line");
    let mut cmd = h.command(&["startup", "--print"]);
    cmd.env("DIAKONOS_STARTUP", "cron");
    let out = h.run(cmd);
    assert!(out.status.success(), "{out:?}");
    let line = stdout(&out);
    let bin = fs::canonicalize(env!("CARGO_BIN_EXE_diakonos")).expect("the binary");
    let units = fs::canonicalize(&h.units).expect("units dir");
    assert_eq!(
        line.trim(),
        format!(
            "@reboot {} --home {} --service-dir {} daemon --detach",
            bin.display(),
            h.home.display(),
            units.display()
        )
    );
    assert!(h.daemon_pid().is_none(), "printing starts no daemon");
}

#[test]
fn startup_adds_the_line_to_the_crontab_once() {
    // With a stand-in crontab: the line is appended after what was there, and a second run adds nothing.
    let h = Home::new("startup_adds_the_line_to_the_crontab");
    let bin = h.root.join("bin");
    fs::create_dir_all(&bin).expect("bin dir");
    let tab = h.root.join("tab");
    fs::write(&tab, "0 * * * * other-job\n").expect("existing crontab");
    let fake = bin.join("crontab");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -l ]; then cat {t}; else cat > {t}; fi\n",
            t = tab.display()
        ),
    )
    .expect("fake crontab");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for _ in 0..2 {
        let mut cmd = h.command(&["startup"]);
        cmd.env("DIAKONOS_STARTUP", "cron").env("PATH", &path);
        let out = h.run(cmd);
        assert!(out.status.success(), "{out:?}");
    }
    let lines: Vec<String> = fs::read_to_string(&tab)
        .expect("crontab")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "0 * * * * other-job");
    assert!(lines[1].starts_with("@reboot /"), "{lines:?}");
    assert!(lines[1].ends_with(" daemon --detach"), "{lines:?}");
}
