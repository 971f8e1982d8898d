//! Unit files: fuzzed, huge, deep, odd and many.

use super::*;

// 3. Unit files.

/// A unit using every key; its dependencies `dep` and `cache` exist.
const RICH_UNIT: &str = r#"[unit]
Description = "fuzz base"
Requires = ["dep"]
Wants = ["cache"]
After = ["dep", "cache"]
StartLimitBurst = 5
StartLimitIntervalSec = 10

[service]
Type = "simple"
ExecStart = "sleep 1000"
ExecStop = "true"
Restart = "on-failure"
RestartSec = 1
RestartMaxDelaySec = 60
TimeoutStartSec = 30
TimeoutStopSec = 10
KillSignal = "SIGTERM"
WorkingDirectory = "."
Environment = ["A=1", "B=two words"]
RemainAfterExit = false
"#;

const KEYS: &[&str] = &[
    "Description",
    "Requires",
    "Wants",
    "After",
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "Type",
    "ExecStart",
    "ExecStop",
    "Restart",
    "RestartSec",
    "RestartMaxDelaySec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "KillSignal",
    "WorkingDirectory",
    "Environment",
    "User",
    "RemainAfterExit",
    "PIDFile",
    "Restrat",
    "execstart",
    "",
    "\"\"",
    "X",
    "a.b.c",
    "\"quoted key\"",
    "ÿ",
    "[service]",
    "ExecStart ",
];

const VALUES: &[&str] = &[
    "1",
    "\"x\"",
    "[]",
    "true",
    "{}",
    "[\"a\"]",
    "\"\"",
    "1979-05-27T07:32:00Z",
    "'literal'",
    "\"\"\"multi\nline\"\"\"",
    "[1, \"mixed\"]",
    "{ a = 1 }",
    "\"sleep\\u0000 1\"",
    "\"\\u001b[31mred\"",
    "\"nobody\"",
    "\"/\"",
    "\"SIGKILL\"",
    "0",
];

const HUGE: &[&str] = &[
    "1e300",
    "-1",
    "9999999999999999999999",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1e-300",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "-0.0",
    "0",
    "0.0000000001",
    "1_000_000_000_000",
    "0x7fffffff",
    "0o777",
    "4294967296",
    "2147483648",
    "1000000000.5",
];

const NUMERIC_KEYS: &[&str] = &[
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "RestartSec",
    "RestartMaxDelaySec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "KillSignal",
];

/// Byte offsets where lines start.
fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| i < text.len()),
    );
    starts
}

/// The lines of `text`, each with its newline.
fn lines_of(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line to insert that is very long in one way or another.
fn long_line(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => format!("Description = \"{}\"\n", "x".repeat(200_000)).into_bytes(),
        1 => format!("{} = 1\n", "K".repeat(20_000)).into_bytes(),
        2 => format!("ExecStart = \"{}\"\n", "a ".repeat(30_000)).into_bytes(),
        3 => {
            let names: Vec<String> = (0..5000).map(|i| format!("\"n{i}\"")).collect();
            format!("Requires = [{}]\n", names.join(", ")).into_bytes()
        }
        4 => {
            let env: Vec<String> = (0..10_000).map(|i| format!("\"E{i}=v\"")).collect();
            format!("Environment = [{}]\n", env.join(",")).into_bytes()
        }
        _ => format!("# {}\n", "#".repeat(500_000)).into_bytes(),
    }
}

/// Nested arrays or inline tables, deep enough to trouble a recursive parser.
fn deep_line(rng: &mut Rng) -> Vec<u8> {
    let depth = *rng.pick(&[64, 1_000, 100_000]);
    if rng.chance(50) {
        format!("X = {}{}\n", "[".repeat(depth), "]".repeat(depth)).into_bytes()
    } else {
        format!("X = {}1{}\n", "{ a = ".repeat(depth), " }".repeat(depth)).into_bytes()
    }
}

/// Applies one to three random edits to `base`; returns the text and what was done.
fn mutate(rng: &mut Rng, base: &[u8]) -> (Vec<u8>, Vec<&'static str>) {
    let mut text = base.to_vec();
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let starts = line_starts(&text);
        let at_line = starts.get(rng.below(starts.len())).copied().unwrap_or(0);
        let pos = rng.below(text.len() + 1);
        match rng.below(14) {
            0 if !text.is_empty() => {
                let i = rng.below(text.len());
                text[i] = rng.next() as u8;
                done.push("flip a byte");
            }
            1 => {
                text.truncate(pos);
                done.push("truncate");
            }
            2 => {
                let mut lines = lines_of(&text);
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    let copy = lines[i].clone();
                    lines.insert(i, copy);
                }
                text = lines.concat();
                done.push("duplicate a line");
            }
            3 => {
                let mut lines = lines_of(&text);
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    lines.remove(i);
                }
                text = lines.concat();
                done.push("delete a line");
            }
            4 => {
                let line = format!("{} = {}\n", rng.pick(KEYS), rng.pick(VALUES));
                text.splice(at_line..at_line, line.into_bytes());
                done.push("insert a random key");
            }
            5 => {
                let key = rng.pick(NUMERIC_KEYS);
                let line = format!("{key} = {}\n", rng.pick(HUGE));
                let mut lines = lines_of(&text);
                let found = lines
                    .iter()
                    .position(|l| l.starts_with(format!("{key} =").as_bytes()));
                match found {
                    Some(i) => lines[i] = line.into_bytes(),
                    None => lines.push(line.into_bytes()),
                }
                text = lines.concat();
                done.push("a huge or odd number");
            }
            6 => {
                text.insert(pos, 0);
                done.push("a NUL byte");
            }
            7 => {
                let seq = rng.pick(BAD_UTF8);
                text.splice(pos..pos, seq.iter().copied());
                done.push("invalid UTF-8");
            }
            8 => {
                let line = long_line(rng);
                text.splice(at_line..at_line, line);
                done.push("a very long line");
            }
            9 => {
                let line = deep_line(rng);
                text.splice(at_line..at_line, line);
                done.push("deep nesting");
            }
            10 => {
                let header = *rng.pick(&[
                    "[servce]",
                    "[[service]]",
                    "[service.x]",
                    "[ service ]",
                    "[unit]",
                    "",
                    "[service",
                    "service]",
                    "[Service]",
                ]);
                let s = String::from_utf8_lossy(&text).replacen("[service]", header, 1);
                text = s.into_bytes();
                done.push("mangle a section header");
            }
            11 => {
                let key = *rng.pick(&["Type", "Restart", "KillSignal"]);
                let value = *rng.pick(&[
                    "\"\"",
                    "\"SIMPLE\"",
                    "\"forking\"",
                    "\"notify\"",
                    "\"oneshot\"",
                    "\"on-failure \"",
                    "\"ALWAYS\"",
                    "\"no\"",
                    "\"SIGKILLL\"",
                    "64",
                    "-9",
                    "\"0\"",
                ]);
                let mut lines = lines_of(&text);
                if let Some(i) = lines
                    .iter()
                    .position(|l| l.starts_with(format!("{key} =").as_bytes()))
                {
                    lines[i] = format!("{key} = {value}\n").into_bytes();
                }
                text = lines.concat();
                done.push("an odd enum value");
            }
            12 => {
                let mut lines = lines_of(&text);
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                text = lines.concat();
                done.push("swap two lines");
            }
            _ => {
                let quote =
                    *rng.pick(&[&b"\""[..], b"'", b"\"\"\"", b"\\", b"[", b"]", b"=", b"\r"]);
                text.splice(pos..pos, quote.iter().copied());
                done.push("a stray quote or bracket");
            }
        }
    }
    (text, done)
}

/// `verify` exited 0 or 1, every stderr line is `diakonos: ...` or an
/// indented hint, no problem is printed twice, an exit 1 names `file` and
/// ends with the summary, and an exit 0 prints only warnings.
fn check_verify(out: &Output, file: &str) -> Result<(), String> {
    let err = stderr(out);
    let code = out.status.code();
    if !matches!(code, Some(0 | 1)) {
        return Err(format!("verify exited with {}\n{err}", out.status));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        return Err(format!("verify panicked:\n{err}"));
    }
    let mut seen = std::collections::HashSet::new();
    for line in err.lines() {
        if !(line.starts_with("diakonos: ") || line.starts_with("  ")) {
            return Err(format!("a stray stderr line {line:?}\n{err}"));
        }
        if line.starts_with("diakonos: ") && !seen.insert(line) {
            return Err(format!("printed twice: {line:?}\n{err}"));
        }
    }
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("diakonos: ") && !l.starts_with("diakonos: warning: "))
        .collect();
    if code == Some(1) {
        let (summary, problems) = errors.split_last().ok_or("exit 1 with no error")?;
        if !summary.contains("have errors") {
            return Err(format!("no summary line last\n{err}"));
        }
        if problems.is_empty() || problems.iter().any(|l| !l.contains(file)) {
            return Err(format!(
                "exit 1, but the errors do not all name {file}\n{err}"
            ));
        }
    } else if !errors.is_empty() || !stdout(out).contains("valid") {
        return Err(format!(
            "exit 0 with errors, or without saying valid\n{err}{}",
            stdout(out)
        ));
    }
    Ok(())
}

#[test]
fn fuzzed_unit_files_never_crash_verify_or_reload() {
    // 300 seeded mutations of a valid unit: `verify` exits 0 or 1 with clean `diakonos:` errors, and a daemon reloading them (ten at a time) stays up.
    let h = Home::new("fuzzed_unit_files_never_crash_verify_or_reload");
    let seed = seed("fuzzed_unit_files_never_crash_verify_or_reload");
    let mut rng = Rng::new(seed);
    let dir = h.root.join("fz");
    fs::create_dir_all(&dir).expect("mkdir");
    for d in [&dir, &h.units] {
        fs::write(d.join("dep.service"), SLEEPER).expect("write");
        fs::write(d.join("cache.service"), SLEEPER).expect("write");
    }
    let cases: Vec<(Vec<u8>, Vec<&str>)> = (0..300)
        .map(|_| mutate(&mut rng, RICH_UNIT.as_bytes()))
        .collect();
    let mut valid = 0;
    for (i, (text, done)) in cases.iter().enumerate() {
        fs::write(dir.join("fz.service"), text).expect("write the fuzzed unit");
        let out = h.cmd(&["--service-dir", "fz", "verify"]);
        if let Err(e) = check_verify(&out, "fz.service") {
            panic!(
                "seed {seed}, case {i} ({done:?}): {e}\nunit file:\n{}",
                clip(&String::from_utf8_lossy(text), 600)
            );
        }
        valid += usize::from(out.status.success());
    }
    eprintln!("{valid} of {} mutations still verified", cases.len());

    // The daemon: ten fuzzed files per reload, next to a running unit.
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    h.ok(&["start", "web"]);
    let web = h.pid("web");
    for (batch, chunk) in cases.chunks(10).enumerate() {
        for (j, (text, _)) in chunk.iter().enumerate() {
            fs::write(h.units.join(format!("fz{j}.service")), text).expect("write");
        }
        let out = h.cmd(&["reload"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "seed {seed}, reload of batch {batch}: {}\n{}",
            out.status,
            stderr(&out)
        );
        assert!(
            alive(daemon),
            "seed {seed}: the daemon died reloading batch {batch} (cases {}..{})",
            batch * 10,
            batch * 10 + chunk.len()
        );
    }
    assert_eq!(h.pid("web"), web, "reload touched an unchanged unit");
    let mut names = vec!["cache", "dep", "web"];
    let fz: Vec<String> = (0..10).map(|j| format!("fz{j}")).collect();
    names.extend(fz.iter().map(String::as_str));
    healthy(&h, daemon, &names);
}

#[test]
fn ten_thousand_unit_files_verify_and_list() {
    // A service dir of 10 000 unit files verifies, and `list --json` has 10 000 entries.
    let h = Home::new("ten_thousand_unit_files_verify_and_list");
    let _fast = FastUnits::new(&h);
    let names: Vec<String> = (0..10_000).map(|i| format!("u{i:05}")).collect();
    for n in &names {
        h.unit(n, "[service]\nExecStart = \"true\"\n");
    }
    let out = h.ok(&["verify"]);
    assert!(out.contains("10000 unit(s)"), "{out}");
    let daemon = start_daemon(&h);
    healthy(&h, daemon, &names);
}

#[test]
fn a_2000_deep_requires_chain_verifies_and_starts() {
    // c0000 <- c0001 <- ... <- c1999 by Requires: verify is happy and `start c1999` brings up all 2 000.
    let h = Home::new("a_2000_deep_requires_chain_verifies_and_starts");
    let _fast = FastUnits::new(&h);
    let names: Vec<String> = (0..2000).map(|i| format!("c{i:04}")).collect();
    h.unit(&names[0], SLEEPER);
    for w in names.windows(2) {
        h.unit(
            &w[1],
            &format!(
                "[unit]\nRequires = [\"{}\"]\n[service]\nExecStart = \"sleep 1000\"\n",
                w[0]
            ),
        );
    }
    let out = h.ok(&["verify"]);
    assert!(out.contains("2000 unit(s)"), "{out}");
    let daemon = start_daemon(&h);
    h.ok(&["start", "c1999"]);
    let list = h.json_list();
    let units = list.as_array().expect("an array");
    assert_eq!(units.len(), 2000);
    let down: Vec<&serde_json::Value> = units.iter().filter(|u| u["state"] != "running").collect();
    assert!(down.is_empty(), "not running: {down:?}");
    healthy(&h, daemon, &names);
    // Stopping 2 000 units one link at a time is slow in a debug build (see
    // the report); the harness kills the process groups instead.
    kill9(daemon);
}

#[test]
fn odd_unit_files_each_get_one_clear_error() {
    // Self-dependency, an empty file, a directory, an unreadable file, symlink loops and dangling links, a FIFO, NULs, bad UTF-8, huge numbers, deep nesting: one clear error each, and a daemon that lists them as invalid.
    let h = Home::new("odd_unit_files_each_get_one_clear_error");
    let units = &h.units;
    h.unit("good", SLEEPER);
    h.unit(
        "selfish",
        "[unit]\nRequires = [\"selfish\"]\n[service]\nExecStart = \"true\"\n",
    );
    h.unit("empty", "");
    fs::create_dir(units.join("dir.service")).expect("mkdir");
    symlink("loop.service", units.join("loop.service")).expect("symlink");
    symlink("ping.service", units.join("pong.service")).expect("symlink");
    symlink("pong.service", units.join("ping.service")).expect("symlink");
    symlink("nowhere.txt", units.join("dangling.service")).expect("symlink");
    nix::unistd::mkfifo(
        &units.join("fifo.service"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    fs::write(
        units.join("nul.service"),
        b"[service]\nExecStart = \"sle\0ep 1\"\n",
    )
    .expect("write");
    fs::write(
        units.join("utf8.service"),
        b"[service]\nExecStart = \"sleep \xff\xfe 1\"\n",
    )
    .expect("write");
    h.unit("escnul", "[service]\nExecStart = \"sleep\\u0000 1\"\n");
    h.unit(
        "hugesec",
        "[service]\nExecStart = \"true\"\nRestartSec = 1e300\n",
    );
    h.unit(
        "negsec",
        "[service]\nExecStart = \"true\"\nRestartSec = -1\n",
    );
    h.unit(
        "hugeburst",
        "[unit]\nStartLimitBurst = 9999999999999999999999\n[service]\nExecStart = \"true\"\n",
    );
    h.unit(
        "deep",
        &format!(
            "[service]\nExecStart = \"true\"\nX = {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    fs::write(units.join("toobig.service"), vec![b'#'; 2 << 20]).expect("write");
    h.unit("bad name!", SLEEPER);
    let root = nix::unistd::Uid::effective().is_root();
    h.unit("locked", SLEEPER);
    fs::set_permissions(
        units.join("locked.service"),
        fs::Permissions::from_mode(0o000),
    )
    .expect("chmod 000");
    // (file stem, what its one error says)
    let mut expected = vec![
        ("selfish", "itself"),
        ("empty", "service"),
        ("dir", "directory"),
        ("loop", "symlink loop"),
        ("ping", "symlink loop"),
        ("pong", "symlink loop"),
        ("dangling", "dangling symlink"),
        ("fifo", "not a regular file"),
        ("nul", "NUL"),
        ("utf8", "UTF-8"),
        ("escnul", "NUL"),
        ("hugesec", "RestartSec"),
        ("negsec", "RestartSec"),
        ("hugeburst", "StartLimitBurst"),
        ("deep", "recurs"),
        ("toobig", "at most"),
        ("bad name!", "invalid unit name"),
    ];
    if !root {
        // Root reads a mode-000 file anyway.
        expected.push(("locked", "ermission"));
    }
    let verify = |h: &Home| {
        let out = h.cmd(&["verify"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        stderr(&out)
    };
    let err = verify(&h);
    for (stem, says) in &expected {
        let path = format!("{}/{stem}.service", units.display());
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with(&format!("diakonos: {path}")))
            .collect();
        assert_eq!(lines.len(), 1, "{stem}: want one error line\n{err}");
        assert!(
            lines[0].contains(says),
            "{stem}: want `{says}` in {:?}",
            lines[0]
        );
    }
    assert!(!err.contains("good.service"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The daemon: every odd one is invalid with a reason, good one starts.
    let daemon = start_daemon(&h);
    h.ok(&["start", "good"]);
    let list = h.json_list();
    for (stem, says) in &expected {
        let u = list
            .as_array()
            .and_then(|a| a.iter().find(|u| u["name"] == *stem));
        if let Some(u) = u {
            assert_eq!(u["state"], "invalid", "{stem}: {u}");
            let reason = u["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(says), "{stem}: reason {reason:?}");
        } else {
            // Names the daemon cannot address (`bad name!`) may be left out.
            assert_eq!(*stem, "bad name!", "{stem} missing from {list}");
        }
    }
    let status = h.status_json("selfish");
    assert!(status.to_string().contains("itself"), "{status}");
    let mut names: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.contains(&"good".to_owned()));
    assert_eq!(h.state("good"), "running");
    // The daemon survives a reload of the same mess (which fails, naming the invalid units).
    h.fails(1, &["reload"]);
    healthy(&h, daemon, &names);
}

#[test]
fn a_list_of_more_than_a_mebibyte_still_works() {
    // 1 100 units with 1 000-byte descriptions make a list reply of about 1.1 MiB; `list` must still show them all.
    let h = Home::new("a_list_of_more_than_a_mebibyte_still_works");
    let text = "d".repeat(1000);
    let names: Vec<String> = (0..1100).map(|i| format!("u{i:04}")).collect();
    for n in &names {
        h.unit(
            n,
            &format!("[unit]\nDescription = \"{text}\"\n[service]\nExecStart = \"true\"\n"),
        );
    }
    let daemon = start_daemon(&h);
    healthy(&h, daemon, &names);
    h.ok(&["list"]);
}

#[test]
fn units_with_huge_bad_values_do_not_break_list() {
    // Two unit files whose bad Type values are 600 KB each still leave `list` showing every unit (SPEC 3: a bad unit never breaks the daemon).
    let h = Home::new("units_with_huge_bad_values_do_not_break_list");
    let huge = "y".repeat(600_000);
    for n in ["bad1", "bad2"] {
        h.unit(
            n,
            &format!("[service]\nExecStart = \"true\"\nType = \"{huge}\"\n"),
        );
    }
    h.unit("web", SLEEPER);
    let daemon = start_daemon(&h);
    h.ok(&["start", "web"]);
    assert_eq!(h.state("bad1"), "invalid");
    healthy(&h, daemon, &["bad1", "bad2", "web"]);
}

#[test]
fn unit_errors_quote_long_values_briefly() {
    // A 100 000-character bad Type value or key name gets an error line of under 1 000 characters.
    let h = Home::new("unit_errors_quote_long_values_briefly");
    let long = "y".repeat(100_000);
    h.unit(
        "longtype",
        &format!("[service]\nExecStart = \"true\"\nType = \"{long}\"\n"),
    );
    h.unit(
        "longkey",
        &format!("[service]\nExecStart = \"true\"\n{long} = 1\n"),
    );
    let out = h.cmd(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let longest = err.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1000, "an error line of {longest} bytes");
}
