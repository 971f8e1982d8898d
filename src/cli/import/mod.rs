//! `import systemd FILE...` and `import pm2 FILE` (SPEC §16): other tools'
//! service definitions -> diakonos unit files. Each importer is a pure
//! function from text to [`Draft`]s (a unit's keys plus what was dropped and
//! why); this module renders a draft as TOML, checks it with the unit parser
//! (so every written unit passes `verify`) and writes it, never over an
//! existing file without `--force`.

pub mod pm2;
pub mod systemd;
pub mod timer;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::unit::{self, keys::Section};

/// One key the importer could not carry over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub key: String,
    pub why: String,
}

/// A unit being imported: its keys in the order they were set, and notes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub name: String,
    /// Where it came from, for the file's first comment.
    pub origin: String,
    unit: Vec<(String, toml::Value)>,
    service: Vec<(String, toml::Value)>,
    socket: Vec<(String, toml::Value)>,
    timer: Vec<(String, toml::Value)>,
    health: Vec<(String, toml::Value)>,
    pub dropped: Vec<Dropped>,
}

impl Draft {
    pub fn new(name: &str, origin: &str) -> Draft {
        Draft {
            name: name.to_string(),
            origin: origin.to_string(),
            ..Draft::default()
        }
    }

    /// Sets a key (a later value replaces an earlier one, as in systemd).
    pub fn set(&mut self, section: Section, key: &str, value: toml::Value) {
        let entries = match section {
            Section::Unit => &mut self.unit,
            Section::Service => &mut self.service,
            Section::Socket => &mut self.socket,
            Section::Timer => &mut self.timer,
            Section::Health => &mut self.health,
        };
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.unit
            .iter()
            .chain(&self.service)
            .chain(&self.socket)
            .chain(&self.timer)
            .chain(&self.health)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Appends to a list key.
    pub fn push(&mut self, section: Section, key: &str, item: &str) {
        let mut list = match self.get(key) {
            Some(toml::Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        if !list.iter().any(|v| v.as_str() == Some(item)) {
            list.push(toml::Value::String(item.to_string()));
        }
        self.set(section, key, toml::Value::Array(list));
    }

    /// Takes a systemd timer's `[timer]` keys and what it dropped.
    pub fn absorb_timer(&mut self, timer: Draft) {
        for (key, value) in timer.timer {
            self.set(Section::Timer, &key, value);
        }
        self.dropped.extend(timer.dropped);
    }

    pub fn drop_key(&mut self, key: &str, why: impl Into<String>) {
        self.dropped.push(Dropped {
            key: key.to_string(),
            why: why.into(),
        });
    }

    /// The unit file's text.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# {}: imported from {}\n",
            one_line(&self.name),
            one_line(&self.origin)
        );
        for d in &self.dropped {
            out.push_str(&format!(
                "# dropped {}: {}\n",
                one_line(&d.key),
                one_line(&d.why)
            ));
        }
        for (header, entries) in [
            ("unit", &self.unit),
            ("service", &self.service),
            ("socket", &self.socket),
            ("timer", &self.timer),
            ("health", &self.health),
        ] {
            if entries.is_empty() {
                continue;
            }
            out.push_str(&format!("\n[{header}]\n"));
            for (key, value) in entries {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }
}

/// Text safe for a TOML comment and a terminal line: newlines become
/// spaces, other control characters (NUL, CR, ESC ...) are escaped.
/// (Found by the import fuzz targets: a NUL or a lone CR in a dropped key
/// made the written unit invalid TOML.)
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push(' '),
            '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// What `import` does with the drafts.
pub struct Options<'a> {
    pub dir: &'a Path,
    pub force: bool,
    pub stdout: bool,
}

/// Checks every draft with the unit parser, then prints or writes them.
/// Dropped keys go to stderr, one line each. Nothing is written when any
/// draft does not check or a file exists (without `force`).
pub fn emit(drafts: &[Draft], opts: &Options<'_>) -> Result<(), Error> {
    if drafts.is_empty() {
        return Err(Error::failed("nothing to import: no service found"));
    }
    let mut planned: Vec<(PathBuf, String)> = Vec::new();
    // Every unit is looked at; those that do not verify are all named.
    let mut failed: Vec<Error> = Vec::new();
    for d in drafts {
        if !unit::is_valid_name(&d.name) {
            return Err(Error::failed_hint(
                format!("cannot import `{}`: not a valid unit name", d.name),
                "rename it in the source file (letters, digits, `-`, `_`, `.`)",
            ));
        }
        if planned
            .iter()
            .any(|(p, _)| p.file_stem() == Some(d.name.as_ref()))
        {
            return Err(Error::failed_hint(
                format!("two services are both named `{}`", d.name),
                "give them different names in the source file",
            ));
        }
        let path = opts.dir.join(format!("{}.service", d.name));
        let text = d.to_toml();
        let parsed = unit::parse(&d.name, &path, &text, opts.dir);
        if let Ok(unit) = &parsed {
            // What `verify` would find on this host (a missing directory or
            // program) is said, not refused: units are often imported for
            // another machine.
            let path_env = std::env::var_os("PATH")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| crate::paths::DEFAULT_PATH.into());
            for problem in unit::check_host(unit, &path_env) {
                errln!(
                    "diakonos: {}: warning: on this host, {}",
                    d.name,
                    one_line(&problem.message)
                );
            }
        }
        if let Err(errors) = parsed {
            let first = crate::unit::first_error(&errors);
            let hint = if opts.stdout {
                // What was made of it, for the user to see where it went wrong.
                out!("{text}");
                "the unit above is what the import made; fix the value in the source file, and import again"
            } else {
                "run with --stdout to see it, fix the value in the source file, and import again"
            };
            failed.push(Error::failed_hint(
                format!("the unit imported as `{}` does not verify: {first}", d.name),
                hint,
            ));
            continue;
        }
        if !opts.stdout && !opts.force && path.exists() {
            return Err(Error::failed_hint(
                format!("{} already exists; nothing was written", path.display()),
                "pass --force to overwrite it, or --stdout to print the unit instead",
            ));
        }
        planned.push((path, text));
    }
    if failed.len() > 1 {
        for e in &failed {
            errln!("diakonos: {e}");
        }
        return Err(Error::failed_hint(
            format!(
                "{} of the {} units imported do not verify; nothing was written",
                failed.len(),
                drafts.len()
            ),
            "fix them in the source files, and import again",
        ));
    }
    if let Some(e) = failed.pop() {
        return Err(e);
    }
    for d in drafts {
        for drop in &d.dropped {
            errln!(
                "diakonos: {}: dropped {}: {}",
                d.name,
                one_line(&drop.key),
                one_line(&drop.why)
            );
        }
    }
    if opts.stdout {
        for (i, (_, text)) in planned.iter().enumerate() {
            let sep = if i > 0 { "\n" } else { "" };
            out!("{sep}{text}");
        }
        return Ok(());
    }
    if !opts.dir.is_dir() {
        std::fs::create_dir_all(opts.dir).map_err(|e| {
            Error::failed_hint(
                format!(
                    "cannot create the service directory {}: {e}",
                    opts.dir.display()
                ),
                "pass --service-dir DIR",
            )
        })?;
    }
    for (path, text) in &planned {
        write_unit(path, text, opts.force)?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes a unit file: a new file (refused if one appeared meanwhile), or
/// with `force` a replacement through a temporary file and a rename.
fn write_unit(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::failed_hint(
                format!("{} already exists; not overwritten", path.display()),
                "pass --force to overwrite it",
            )
        } else {
            Error::failed(format!("cannot write {}: {e}", path.display()))
        }
    };
    if force {
        return crate::paths::write_atomic(path, text).map_err(fail);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

/// A unit name from another tool's name: `web@1` -> `web-1` (`@` marks a
/// host in diakonos), anything outside the allowed characters -> `-`.
pub fn unit_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_dropped_keys_keep_the_unit_valid_toml() {
        // Regressions from fuzzing (fuzz/regressions/import_*): a NUL in a systemd value and a CR in a
        // PM2 field name were written raw into the "# dropped" comments, which TOML refuses.
        let d = systemd::import(
            "[Service]\nType=simpl\0e\nExecStart=/bin/true\n",
            "a.service",
            "a",
        );
        let text = d.to_toml();
        assert!(text.parse::<toml::Table>().is_ok(), "{text}");
        assert!(text.contains("Type=simpl\\u{0}e"), "{text}");
        let json = r#"[{"name":"w","pm2_env":{"pm_exec_path":"/a.py","exec_interpret\r":"x"}}]"#;
        for d in pm2::import(json, "j", Path::new("/")).unwrap() {
            let text = d.to_toml();
            assert!(text.parse::<toml::Table>().is_ok(), "{text}");
        }
    }
}
