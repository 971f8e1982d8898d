//! The fuzz targets as plain functions of bytes, so the same bodies run
//! under libFuzzer (`cargo +nightly fuzz run NAME`, `fuzz_targets/`) and
//! on stable as a corpus replay (`cargo test`, `tests/corpus.rs`). Each
//! checks more than "does not panic" where there is a property to check.

use std::path::Path;

/// The unit file parser: any text gives a unit or errors, never a panic,
/// and every error has a message.
pub fn unit_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = Path::new("/srv/units");
    if let Err(errors) = diakonos::unit::parse("fuzz", &dir.join("fuzz.service"), text, dir) {
        assert!(!errors.is_empty());
        for e in errors {
            assert!(!e.message.is_empty());
        }
    }
}

/// `import systemd`: whatever the input, the draft renders as TOML that
/// parses (string quoting and key names are the importer's job).
pub fn import_systemd(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let draft = diakonos::cli::import::systemd::import(&text, "fuzz.service", "fuzz");
    let toml_text = draft.to_toml();
    if let Err(e) = toml_text.parse::<toml::Table>() {
        panic!("import systemd wrote invalid TOML ({e}):\n{toml_text}");
    }
    let _ = diakonos::unit::parse(
        "fuzz",
        Path::new("/u/fuzz.service"),
        &toml_text,
        Path::new("/u"),
    );
}

/// `import pm2`: an error or drafts whose TOML parses.
pub fn import_pm2(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(drafts) = diakonos::cli::import::pm2::import(&text, "fuzz", Path::new("/srv")) {
        for d in drafts {
            let toml_text = d.to_toml();
            if let Err(e) = toml_text.parse::<toml::Table>() {
                panic!("import pm2 wrote invalid TOML ({e}):\n{toml_text}");
            }
        }
    }
}

/// The control socket's frame splitter and request decoder, as the daemon
/// runs them on a connection's bytes; also the client's reply decoder.
pub fn frame(data: &[u8]) {
    use diakonos::protocol;
    let mut buf = data.to_vec();
    while let Ok(Some(body)) = protocol::take_frame(&mut buf) {
        let _ = protocol::decode_request(&body, protocol::version());
        let _ = protocol::decode_reply(&body);
    }
    let _ = protocol::decode_request(data, protocol::version());
    let _ = protocol::decode_reply(data);
}

/// Where [`state_file`] writes its file: one directory per process, which
/// whoever runs the targets removes when done (the corpus replay does).
pub fn scratch_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("diakonos-fuzz-{}", std::process::id()))
}

/// The state file loader: any bytes give a state (possibly empty), never
/// a panic. Goes through a real file, as the daemon reads it.
pub fn state_file(data: &[u8]) {
    thread_local! {
        static PATH: std::path::PathBuf = {
            let dir = scratch_dir();
            let _ = std::fs::create_dir_all(&dir);
            dir.join("state")
        };
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_ok() {
            let _ = diakonos::daemon::persist::load_state(path);
        }
        // A corrupt file was moved aside: keep the directory small.
        if let Some(dir) = path.parent() {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    });
}

/// Time spans (`"1min 30s"`): a result is finite and not negative.
pub fn time_span(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(secs) = diakonos::unit::parse_time_span(text) {
        assert!(secs >= 0.0 || secs.is_nan(), "{text:?} -> {secs}");
    }
}

/// sd_notify datagrams, as the notify socket hands their text to the
/// supervisor: what comes out is what the supervisor may use as it is
/// (a STATUS shown on one line, durations that fit after any instant).
pub fn sd_notify(data: &[u8]) {
    use diakonos::daemon::sd_notify::{parse, Message};
    let text = String::from_utf8_lossy(data);
    let msgs = parse(&text);
    assert!(msgs.len() <= text.lines().count());
    let now = std::time::Instant::now();
    for m in msgs {
        match m {
            Message::Status(Some(t)) => {
                assert!(!t.is_empty() && t.chars().count() <= 200, "{t:?}");
                assert!(!t.chars().any(char::is_control), "{t:?}");
            }
            Message::Errno(Some(n)) => assert!(n > 0),
            Message::WatchdogUsec(d) | Message::ExtendTimeout(d) => {
                assert!(now.checked_add(d).is_some(), "{d:?}");
            }
            _ => {}
        }
    }
}

/// The HTTP probe's status line, fed in pieces as the probe reads them
/// (the first byte picks the piece size): there is always a verdict once
/// the server closes, it is one short line of printable text (it is shown
/// by `status`), and a status code in it is one the server sent.
pub fn http_status(data: &[u8]) {
    use diakonos::daemon::driver::probes::response;
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let range = (200, 399);
    let mut buf = Vec::new();
    let mut verdict = None;
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        verdict = response(&buf, false, range);
        if verdict.is_some() {
            break;
        }
    }
    let verdict = verdict
        .or_else(|| response(&buf, true, range))
        .expect("a verdict once the server closed");
    let text = match &verdict {
        Ok(t) | Err(t) => t,
    };
    assert!(!text.is_empty() && text.chars().count() <= 100, "{text:?}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
    if let Some(code) = text.strip_prefix("HTTP ") {
        assert!(
            code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
            "{text:?} from {buf:?}"
        );
        let n: u16 = code.parse().expect("HTTP CODE");
        // The code's digits, after something that is not a digit (the
        // separator is whitespace, not necessarily a space).
        assert!(
            buf.windows(4)
                .any(|w| !w[0].is_ascii_digit() && &w[1..] == code.as_bytes()),
            "{text:?} is not what {buf:?} says"
        );
        assert_eq!(verdict.is_ok(), (range.0..=range.1).contains(&n));
    } else {
        assert!(verdict.is_err());
    }
}

/// EnvironmentFile: every key is a variable name, every error one line,
/// and what it read, written back double-quoted, reads the same.
pub fn env_file(data: &[u8]) {
    use diakonos::unit::parse_env_file;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = match parse_env_file(text) {
        Ok(pairs) => pairs,
        Err(e) => {
            assert!(e.starts_with("line "), "{e:?}");
            assert!(!e.chars().any(char::is_control), "{e:?}");
            return;
        }
    };
    let mut again = String::new();
    for (k, v) in &pairs {
        let mut key = k.chars();
        assert!(
            key.next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{k:?}"
        );
        again.push_str(k);
        again.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' | '\\' | '$' | '`' => {
                    again.push('\\');
                    again.push(c);
                }
                '\n' => again.push_str("\\n"),
                c => again.push(c),
            }
        }
        again.push_str("\"\n");
    }
    assert_eq!(
        parse_env_file(&again).as_ref(),
        Ok(&pairs),
        "written back as {again:?}"
    );
}

/// OnCalendar and TimeZone: line 1 the expression, line 2 the zone (else
/// UTC), line 3 a Unix time in ms to start from. Through the unit parser
/// as `verify` and the daemon see it; what it accepts the daemon can arm:
/// the next elapses, each one later than the last.
pub fn cron(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let expr = lines.next().unwrap_or_default();
    let tz = lines.next().unwrap_or("UTC");
    let after = lines
        .next()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(1_795_000_000_000);
    let unit_text = format!(
        "[service]\nExecStart = \"true\"\n[timer]\nOnCalendar = {}\nTimeZone = {}\n",
        toml::Value::String(expr.to_owned()),
        toml::Value::String(tz.to_owned()),
    );
    let dir = Path::new("/srv/units");
    let timer = match diakonos::unit::parse("fuzz", &dir.join("fuzz.service"), &unit_text, dir) {
        Ok(unit) => unit.timer.expect("a [timer]"),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(!e.message.is_empty());
            }
            return;
        }
    };
    assert!(!timer.describe().is_empty());
    let [calendar] = timer.calendar.as_slice() else {
        panic!("one OnCalendar expression: {:?}", timer.calendar)
    };
    let c = diakonos::unit::parse_cron(calendar).expect("a cron expression");
    let zone = diakonos::unit::zone(&timer.time_zone).expect("a zone");
    let mut at = after;
    for _ in 0..3 {
        match diakonos::unit::next_elapse(&c, &zone, at) {
            Some(next) => {
                assert!(next > at, "{expr:?} in {tz}: {next} after {at}");
                at = next;
            }
            None => break,
        }
    }
}

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for the stable corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("unit_file", unit_file),
    ("import_systemd", import_systemd),
    ("import_pm2", import_pm2),
    ("frame", frame),
    ("state_file", state_file),
    ("time_span", time_span),
    ("sd_notify", sd_notify),
    ("http_status", http_status),
    ("env_file", env_file),
    ("cron", cron),
];
