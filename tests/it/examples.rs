//! The example units shipped in `units/` load and work.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::util::Home;

/// Copies every `units/*.service` of the repository into the test's unit dir.
fn with_examples(h: &Home) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("units/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "service") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            h.unit(
                &name,
                &std::fs::read_to_string(&path).expect("readable unit"),
            );
            names.push(name);
        }
    }
    names.sort();
    names
}

#[test]
fn every_shipped_example_verifies() {
    // `verify` accepts every unit file in units/ (the repository's own directory).
    let h = Home::new("every_shipped_example_verifies");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let out = h.bare(&["--service-dir", &dir.display().to_string(), "verify"]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let names = with_examples(&h);
    assert!(names.len() >= 3, "{names:?}");
    for name in ["database", "example-web", "worker"] {
        assert!(
            names.iter().any(|n| n == name),
            "units/{name}.service is missing"
        );
    }
}

#[test]
fn worker_example_pulls_in_its_database() {
    // The README's worker example: start worker brings database up first, with the worker's environment.
    let h = Home::new("worker_example_pulls_in_its_database");
    with_examples(&h);
    h.ok(&["start", "worker", "migrate"]);
    for name in ["database", "worker"] {
        assert_eq!(h.state(name), "running", "{name}");
    }
    assert_eq!(h.state("migrate"), "running", "RemainAfterExit oneshot");
    h.wait_until(
        "the worker to log its environment",
        Duration::from_secs(5),
        || {
            let log = h.ok(&["logs", "worker"]);
            log.contains("worker 1 up at log level info")
        },
    );
    let out = h.ok(&["stop", "database"]);
    assert!(
        out.find("worker").unwrap() < out.find("database").unwrap(),
        "{out}"
    );
    assert_eq!(h.state("worker"), "inactive");
}

#[test]
fn example_web_serves_http() {
    // example-web answers HTTP (on a free port instead of its 8080: other test runs share the box).
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status();
    assert!(
        python.is_ok_and(|s| s.success()),
        "this test needs python3 (.ci/run installs it)"
    );
    let h = Home::new("example_web_serves_http");
    with_examples(&h);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let unit = std::fs::read_to_string(h.units.join("example-web.service")).expect("read");
    assert!(
        unit.contains(" 8080 "),
        "example-web no longer uses 8080: {unit}"
    );
    h.unit("example-web", &unit.replace(" 8080 ", &format!(" {port} ")));
    h.ok(&["start", "example-web"]);
    let mut answer = String::new();
    h.wait_until(
        "example-web to answer HTTP",
        Duration::from_secs(10),
        || {
            let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            if conn.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
                return false;
            }
            answer.clear();
            conn.read_to_string(&mut answer).is_ok() && answer.starts_with("HTTP/1.0 200")
        },
    );
    assert!(
        answer.contains("worker.service"),
        "it serves the unit directory: {answer}"
    );
    h.ok(&["stop", "example-web"]);
}

#[test]
fn the_readme_unit_examples_verify() {
    // Every ```toml block of README.md that starts with `# services/NAME.service` (the socket-activated Python server, the nightly backup and its OnFailure hook, the WatchPaths dev server) is a unit file `verify` accepts without a warning.
    let h = Home::new("the_readme_unit_examples_verify");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut names = Vec::new();
    for block in readme.split("```toml\n").skip(1) {
        let body = block.split("```").next().unwrap_or_default();
        let Some(name) = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# services/"))
            .and_then(|l| l.trim().strip_suffix(".service"))
        else {
            continue;
        };
        h.unit(name, body);
        names.push(name.to_string());
    }
    for name in ["hello", "backup", "backup-alert", "dev"] {
        assert!(
            names.iter().any(|n| n == name),
            "no README example services/{name}.service in {names:?}"
        );
    }
    let out = h.cmd(&["verify"]);
    let text = format!("{}{}", crate::util::stdout(&out), crate::util::stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        !text.to_lowercase().contains("warning"),
        "a README example warns: {text}"
    );
    assert!(text.contains(&format!("{} unit(s)", names.len())), "{text}");
}
