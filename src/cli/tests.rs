//! Command-line parsing: global options anywhere, each command's options,
//! help with an example for every command, near-miss suggestions.

use super::*;
use std::ffi::OsString;

fn p(args: &[&str]) -> Result<(Global, Command), Error> {
    parse(args.iter().map(OsString::from))
}

#[test]
fn global_options_go_anywhere() {
    // Options are accepted before or after the command.
    let (g, cmd) = p(&["start", "web", "--service-dir", "units", "--home", "/h"]).unwrap();
    assert_eq!(cmd, Command::Start(vec!["web".into()]));
    assert_eq!(g.service_dir, Some(PathBuf::from("units")));
    assert_eq!(g.home, Some(PathBuf::from("/h")));
}

#[test]
fn daemon_init_options_and_startup_print() {
    // --init takes unit names and the exit policy; its flags and --print go only where they belong.
    let (_, cmd) = p(&[
        "daemon",
        "--init",
        "a",
        "b",
        "--exit-with",
        "b",
        "--exit-when",
        "never",
        "--file-logs",
    ])
    .unwrap();
    let want = crate::daemon::InitOptions {
        units: vec!["a".into(), "b".into()],
        exit_with: Some("b".into()),
        never: true,
        file_logs: true,
    };
    assert_eq!(
        cmd,
        Command::Daemon {
            detach: false,
            init: Some(want),
            metrics_file: None,
        }
    );
    assert_eq!(
        p(&["startup", "--print"]).unwrap().1,
        Command::Startup { print: true }
    );
    for args in [
        &["daemon", "a"][..],
        &["daemon", "--init", "--detach"],
        &["daemon", "--init", "--exit-when", "sometimes"],
        &["list", "--exit-with", "a"],
        &["list", "--print"],
    ] {
        assert_eq!(p(args).unwrap_err().exit_code(), 2, "{args:?}");
    }
}

#[test]
fn words_that_cannot_name_a_unit_are_usage_errors_that_say_what_to_give() {
    // A unit file's name or path gets the unit's name as the hint, for every command that takes names; an empty or hidden name, or one with a space, is refused; an empty --home is not the current directory.
    for args in [
        &["start", "web.service"][..],
        &["verify", "services/web.service"],
        &["export", "systemd", "web.service"],
        &["logs", "web.service"],
        &["tree", "web.service"],
        &["events", "web.service"],
        &["stats", "web.service"],
    ] {
        let err = p(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
        assert!(err.to_string().ends_with("; hint: name it `web`"), "{err}");
    }
    for bad in ["", ".hidden", "my app", "-x"] {
        let err = p(&["status", "--", bad]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad:?}");
    }
    assert!(p(&["status", "web"]).is_ok());
    for option in ["--home", "--service-dir"] {
        let err = p(&["list", option, ""]).unwrap_err();
        assert!(err.to_string().contains("needs a path"), "{err}");
    }
}

#[test]
fn help_before_or_after_the_command_is_that_commands_help() {
    // `--help start` and `start --help` both show start's help; `--help` alone the global one.
    for args in [
        &["--help", "start"][..],
        &["start", "--help"],
        &["-h", "start", "web"],
    ] {
        assert_eq!(
            p(args).unwrap().1,
            Command::Help(Some("start".into())),
            "{args:?}"
        );
    }
    assert_eq!(p(&["--help"]).unwrap().1, Command::Help(None));
}

#[test]
fn a_commands_options_given_to_run_say_where_they_go() {
    // `run x ls -la`: a usage error that shows `--`.
    let err = p(&["run", "ls", "-la"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("after `--`"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    // Missing names, unknown commands and misplaced flags are usage errors.
    for args in [
        &["start"][..],
        &["frobnicate"],
        &["list", "-f"],
        &["stop", "--json", "x"],
        &[],
        &["status", "a", "b"],
        &["logs", "x", "-n", "many"],
    ] {
        let err = p(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    // `help NAME`, `NAME --help` and the completion scripts need a row per command.
    for name in COMMANDS {
        let row = help::find(name).unwrap_or_else(|| panic!("`{name}` has no row in cli/help.rs"));
        assert!(
            row.example.starts_with("diakonos ") || row.example.contains(" diakonos "),
            "{name}"
        );
    }
    assert_eq!(
        help::COMMANDS.len(),
        COMMANDS.len(),
        "a help row for a command the parser does not know"
    );
    let (_, cmd) = p(&["export", "--help"]).unwrap();
    assert_eq!(cmd, Command::Help(Some("export".into())));
}

#[test]
fn unknown_command_suggests_a_near_miss() {
    // A typo in the command gets a did-you-mean.
    let err = p(&["statsu", "x"]).unwrap_err().to_string();
    assert!(err.contains("did you mean `status`"), "{err}");
}

#[test]
fn run_takes_its_options_and_the_command_after_dashes() {
    // Options before `--` are ours; everything after is the command's.
    let (_, cmd) = p(&[
        "run", "--name", "api", "--env", "A=1", "--env", "B=2", "--force", "--", "node", "app.js",
        "--name", "x",
    ])
    .unwrap();
    let Command::Run(o) = cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(o.name.as_deref(), Some("api"));
    assert_eq!(o.env, vec!["A=1", "B=2"]);
    assert!(o.force);
    assert_eq!(o.command, vec!["node", "app.js", "--name", "x"]);
    for bad in [
        &["start", "--name", "x", "web"][..],
        &["stop", "--all", "web"],
        &["list", "--all"],
        &["start", "--force", "web"],
        &["run", "--"],
    ] {
        assert_eq!(p(bad).unwrap_err().exit_code(), 2, "{bad:?}");
    }
    assert_eq!(
        p(&["stop", "--all"]).unwrap().1,
        Command::All("stop".into())
    );
}

#[test]
fn logs_takes_lines_and_follow() {
    // `logs` reads -n and -f.
    let (_, cmd) = p(&["logs", "web", "-n", "5", "-f"]).unwrap();
    assert_eq!(
        cmd,
        Command::Logs {
            name: Some("web".into()),
            lines: 5,
            follow: true
        }
    );
}
