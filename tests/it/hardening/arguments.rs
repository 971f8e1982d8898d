//! Command-line arguments: fuzzed argument vectors and odd paths.

use super::*;

// 4. Command-line arguments.

/// A bit of an argument vector: one or more words that belong together.
fn cli_atom(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    let afile = h.root.join("a-file").into_os_string();
    let home = h.home.clone().into_os_string();
    let os = |s: &str| OsString::from(s);
    let numbers = [
        "0",
        "-1",
        "5",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999",
        "1e300",
        "NaN",
        "",
        " 3",
    ];
    match rng.below(12) {
        0 => vec![os(rng.pick::<&str>(&[
            "--json",
            "--no-color",
            "--no-colour",
            "-h",
            "--help",
            "-V",
            "--version",
            "--detach",
            "--bogus",
            "-x",
            "-",
            "--",
            "---",
            "--json=1",
            "-nfoo",
            "-Vh",
            "--help=me",
        ]))],
        1 => vec![
            os(rng.pick::<&str>(&["-n", "--lines"])),
            os(rng.pick::<&str>(&numbers)),
        ],
        2 => vec![os(rng.pick::<&str>(&numbers))],
        3 => vec![
            os("--service-dir"),
            rng.pick(&[
                os("units"),
                os(""),
                os("/nonexistent/dir"),
                os("/dev/null"),
                os("units/../units"),
                os(&"d".repeat(5000)),
            ])
            .clone(),
        ],
        // --home only with values that cannot make a second daemon.
        4 => vec![os("--home"), rng.pick(&[afile, home]).clone()],
        5 => vec![OsString::from_vec(rng.pick(BAD_UTF8).to_vec())],
        6 => vec![os(&"n".repeat(rng.pick(&[300, 5000, 100_000]).to_owned()))],
        _ => vec![os(rng.pick::<&str>(&[
            "web",
            "nosuch",
            "",
            "../../etc/passwd",
            "a b",
            "web.service",
            "é",
            "web@host",
            "list",
            "verify",
            "status",
            "logs",
            "help",
            "statsu",
            "LIST",
        ]))],
    }
}

/// A random command line; mostly commands that need no daemon. Half are
/// well-formed commands with odd values, half are word soup.
fn cli_args(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    if rng.chance(50) {
        well_formed(rng, h)
    } else {
        soup(rng, h)
    }
}

/// A command in a valid shape, with odd names and numbers, and global
/// options before or after it.
fn well_formed(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    let long = "n".repeat(5000);
    let names = [
        "web",
        "web",
        "nosuch",
        "",
        "a b",
        "é",
        "../x",
        "-",
        long.as_str(),
    ];
    let name = |rng: &mut Rng| OsString::from(*rng.pick(&names));
    let mut words: Vec<Vec<OsString>> = Vec::new();
    let cmd: Vec<OsString> = match rng.below(10) {
        0..=2 => {
            let mut v = vec![OsString::from("verify")];
            for _ in 0..rng.below(3) {
                v.push(name(rng));
            }
            v
        }
        3 | 4 => vec![OsString::from("daemon-status")],
        5 => {
            let mut v = vec![OsString::from("logs"), name(rng)];
            if rng.chance(50) {
                v.push(OsString::from("-n"));
                v.push(OsString::from(*rng.pick(&[
                    "0",
                    "1",
                    "18446744073709551615",
                    "99999999999999999999",
                    "-1",
                ])));
            }
            v
        }
        6 => vec![OsString::from(*rng.pick(&["help", "--help", "-V", "-h"]))],
        7 => vec![OsString::from("status"), name(rng)],
        8 => vec![OsString::from("list")],
        _ => {
            let cmd = *rng.pick(&[
                "start", "stop", "restart", "enable", "disable", "reload", "kill",
            ]);
            let mut v = vec![OsString::from(cmd)];
            if !matches!(cmd, "reload" | "kill") {
                v.push(name(rng));
            }
            v
        }
    };
    let json_ok = ["list", "status", "daemon-status"]
        .iter()
        .any(|c| cmd[0] == *c);
    words.push(cmd);
    if json_ok && rng.chance(40) {
        words.push(vec![OsString::from("--json")]);
    }
    if rng.chance(30) {
        let extra = match rng.below(3) {
            0 => vec![OsString::from("--no-color")],
            1 => vec![OsString::from("--service-dir"), OsString::from("units")],
            _ => vec![OsString::from("--home"), h.root.join("a-file").into()],
        };
        let at = rng.below(words.len() + 1);
        words.insert(at, extra);
    }
    words.concat()
}

/// Random atoms around a random command word.
fn soup(rng: &mut Rng, h: &Home) -> Vec<OsString> {
    let command = *rng.pick(&[
        "verify",
        "daemon-status",
        "logs",
        "help",
        "frobnicate",
        "",
        "statsu",
        "list",
        "status",
        "start",
        "stop",
        "restart",
        "reload",
        "enable",
        "disable",
        "kill",
    ]);
    let mut words: Vec<Vec<OsString>> = (0..rng.below(5)).map(|_| cli_atom(rng, h)).collect();
    if rng.chance(85) {
        let at = rng.below(words.len() + 1);
        words.insert(at, vec![OsString::from(command)]);
    }
    // A flag that takes a value, last and without one.
    if rng.chance(5) {
        words.push(vec![OsString::from(*rng.pick(&[
            "--home",
            "--service-dir",
            "-n",
        ]))]);
    }
    words.concat()
}

#[test]
fn random_argument_vectors_never_panic_the_client() {
    // 300 seeded argument vectors (commands, flags, garbage, huge numbers, empty and non-UTF-8 words) exit 0, 1, 2 or 3: never a panic or a signal.
    let h = Home::new("random_argument_vectors_never_panic_the_client");
    let seed = seed("random_argument_vectors_never_panic_the_client");
    let mut rng = Rng::new(seed);
    h.unit("web", SLEEPER);
    fs::write(h.root.join("a-file"), "not a directory").expect("write");
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..300 {
        let args = cli_args(&mut rng, &h);
        // `daemon` (foreground) and `logs -f` run until killed: not here.
        assert!(!args
            .iter()
            .any(|a| a == "daemon" || a == "-f" || a == "--follow"));
        let mut cmd = Command::new(BIN);
        cmd.arg("--home")
            .arg(&h.home)
            .args(&args)
            .current_dir(&h.root)
            .env_remove("DIAKONOS_HOME")
            .env_remove("DIAKONOS_SERVICE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        let out = h.run_within(cmd, Duration::from_secs(30));
        let shown: Vec<String> = args
            .iter()
            .map(|a| clip(&a.to_string_lossy(), 40))
            .collect();
        assert!(
            matches!(out.status.code(), Some(0..=3)),
            "seed {seed}, vector {i} {shown:?}: {}\n{}",
            out.status,
            stderr(&out)
        );
        *codes.entry(out.status.code()).or_insert(0) += 1;
        assert!(
            !stderr(&out).contains("panicked"),
            "seed {seed}, vector {i} {shown:?}:\n{}",
            stderr(&out)
        );
    }
    eprintln!("exit codes: {codes:?}");
    // At most one daemon came of it, and if there is one it answers.
    let daemons = h.daemons();
    assert!(daemons.len() <= 1, "seed {seed}: daemons {daemons:?}");
    if let [daemon] = daemons[..] {
        assert_eq!(h.daemon_pid(), Some(daemon));
        let out = h.bare(&["--home", h.home.to_str().expect("utf-8"), "list"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn a_non_utf8_service_dir_fails_at_once() {
    // A --service-dir that is not UTF-8 gets an answer at once, not after the daemon's 10 s client timeout.
    let h = Home::new("a_non_utf8_service_dir_fails_at_once");
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    let mut cmd = Command::new(BIN);
    cmd.arg("--home")
        .arg(&h.home)
        .arg("--service-dir")
        .arg(OsString::from_vec(b"units-\xff".to_vec()))
        .arg("list")
        .current_dir(&h.root)
        .stdin(Stdio::null());
    let started = Instant::now();
    let out = h.run_within(cmd, Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: {}",
        stderr(&out)
    );
    healthy(&h, daemon, &["web"]);
}
