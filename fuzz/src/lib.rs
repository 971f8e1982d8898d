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

/// The state file loader: any bytes give a state (possibly empty), never
/// a panic. Goes through a real file, as the daemon reads it.
pub fn state_file(data: &[u8]) {
    thread_local! {
        static PATH: std::path::PathBuf = {
            let dir = std::env::temp_dir().join(format!("diakonos-fuzz-{}", std::process::id()));
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

/// Every target by name, for the stable corpus replay.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("unit_file", unit_file),
    ("import_systemd", import_systemd),
    ("import_pm2", import_pm2),
    ("frame", frame),
    ("state_file", state_file),
    ("time_span", time_span),
];
