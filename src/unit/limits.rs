//! Resource limits and identity (SPEC §13): the `Limit*` keys, Nice,
//! OOMScoreAdjust, UMask, Group, SupplementaryGroups and EnvironmentFile,
//! read from the shape-checked values into [`Limits`]. Also the value
//! syntaxes (`"soft:hard"`, `"infinity"`, `K`/`M`/`G`) and the
//! EnvironmentFile format, both pure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::resource::Resource;
use toml::de::DeValue;

use super::diag::{esc, Ctx};
use super::shape::Values;

/// The rlimit keys: key name, resource, whether it counts bytes (and so
/// takes K/M/G suffixes).
pub const RLIMIT_KEYS: &[(&str, Resource, bool)] = &[
    ("LimitNOFILE", Resource::RLIMIT_NOFILE, false),
    ("LimitNPROC", Resource::RLIMIT_NPROC, false),
    ("LimitCORE", Resource::RLIMIT_CORE, true),
    ("LimitAS", Resource::RLIMIT_AS, true),
    ("LimitDATA", Resource::RLIMIT_DATA, true),
    ("LimitSTACK", Resource::RLIMIT_STACK, true),
    ("LimitMEMLOCK", Resource::RLIMIT_MEMLOCK, true),
    ("LimitFSIZE", Resource::RLIMIT_FSIZE, true),
    ("LimitCPU", Resource::RLIMIT_CPU, false),
    ("LimitRTPRIO", Resource::RLIMIT_RTPRIO, false),
    ("LimitNICE", Resource::RLIMIT_NICE, false),
    ("LimitSIGPENDING", Resource::RLIMIT_SIGPENDING, false),
    ("LimitMSGQUEUE", Resource::RLIMIT_MSGQUEUE, true),
];

/// "No limit", as the kernel spells it.
pub const INFINITY: u64 = u64::MAX;

/// One rlimit to set: index into the table of `Limit*` keys, soft, hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub key: u8,
    pub soft: u64,
    pub hard: u64,
}

impl Rlimit {
    pub fn name(&self) -> &'static str {
        RLIMIT_KEYS[usize::from(self.key)].0
    }

    pub fn resource(&self) -> Resource {
        RLIMIT_KEYS[usize::from(self.key)].1
    }
}

/// What a unit asks of the child before exec beyond argv, cwd and User.
/// Empty (the default) means the plain, fast spawn path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub rlimits: Vec<Rlimit>,
    pub nice: Option<i32>,
    pub oom_score_adjust: Option<i32>,
    pub umask: Option<u32>,
    pub group: Option<String>,
    pub supplementary_groups: Vec<String>,
    /// (file, optional): read at each start, before Environment.
    pub environment_files: Vec<(PathBuf, bool)>,
    /// MemoryMax in bytes (None: no memory watch).
    pub memory_max: Option<u64>,
    /// MemoryCheckSec when written (else the table's default).
    pub memory_check: Option<Duration>,
}

impl Limits {
    /// Whether anything must be done in the child (EnvironmentFile is read
    /// by the daemon and needs no child work).
    pub fn needs_child_work(&self) -> bool {
        !self.rlimits.is_empty()
            || self.nice.is_some()
            || self.oom_score_adjust.is_some()
            || self.umask.is_some()
            || self.group.is_some()
            || !self.supplementary_groups.is_empty()
    }

    /// How often MemoryMax is checked (never below 0.1 s).
    pub fn memory_check_every(&self) -> Duration {
        self.memory_check
            .unwrap_or_else(|| super::schema::default_secs("MemoryCheckSec"))
            .max(Duration::from_millis(100))
    }

    /// The settings as `Key=value` lines, for `status`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rlimits {
            let show = |n: u64| {
                if n == INFINITY {
                    "infinity".to_owned()
                } else {
                    n.to_string()
                }
            };
            out.push(format!("{}={}:{}", r.name(), show(r.soft), show(r.hard)));
        }
        if let Some(n) = self.nice {
            out.push(format!("Nice={n}"));
        }
        if let Some(n) = self.oom_score_adjust {
            out.push(format!("OOMScoreAdjust={n}"));
        }
        if let Some(m) = self.umask {
            out.push(format!("UMask={m:04o}"));
        }
        if let Some(g) = &self.group {
            out.push(format!("Group={g}"));
        }
        if !self.supplementary_groups.is_empty() {
            out.push(format!(
                "SupplementaryGroups={}",
                self.supplementary_groups.join(" ")
            ));
        }
        if let Some(max) = self.memory_max {
            out.push(format!(
                "MemoryMax={} (checked every {}s)",
                format_bytes(max),
                self.memory_check_every().as_secs_f64()
            ));
        }
        for (path, optional) in &self.environment_files {
            let dash = if *optional { "-" } else { "" };
            out.push(format!("EnvironmentFile={dash}{}", path.display()));
        }
        out
    }
}

/// Reads the limit and identity keys; bad values are errors at their place.
pub(super) fn build(cx: &mut Ctx<'_>, v: &Values<'_>, service_dir: &Path) -> Limits {
    let mut limits = Limits::default();
    for (i, (name, _, bytes)) in RLIMIT_KEYS.iter().enumerate() {
        let Some(value) = v.entries.get(name) else {
            continue;
        };
        let text = match value.get_ref() {
            DeValue::Integer(n) => n.as_str().to_owned(),
            DeValue::String(s) => s.to_string(),
            _ => continue,
        };
        // LimitCPU counts seconds: a time span (`"1min"`) is read as one.
        let text = match (*name, super::values::parse_time_span(&text)) {
            ("LimitCPU", Ok(secs)) if !text.contains(':') && text.trim() != "infinity" => {
                format!("{}", secs.floor() as u64)
            }
            _ => text,
        };
        match parse_rlimit(&text, *bytes) {
            Ok((soft, hard)) => limits.rlimits.push(Rlimit {
                key: i as u8,
                soft,
                hard,
            }),
            Err(why) => cx.at(
                value.span(),
                format!("`{name}` is \"{}\": {why}", esc(&text)),
                Some(RLIMIT_HINT.to_owned()),
            ),
        }
    }
    if let Some(value) = v.entries.get("MemoryMax") {
        let text = match value.get_ref() {
            DeValue::Integer(n) => n.as_str().to_owned(),
            DeValue::String(s) => s.to_string(),
            _ => String::new(),
        };
        let size = match text.trim().strip_suffix('%') {
            Some(pct) => percent_of_memory(pct),
            None => one_limit(&text, true),
        };
        match size {
            Ok(INFINITY) => {}
            Ok(0) => cx.at(
                value.span(),
                "`MemoryMax` is 0; expected a size like \"200M\" or \"infinity\"".to_owned(),
                None,
            ),
            Ok(n) => limits.memory_max = Some(n),
            Err(why) => cx.at(
                value.span(),
                format!("`MemoryMax` is \"{}\": {why}", esc(&text)),
                Some("write a size like \"200M\", \"1G\", \"50%\" (of the machine's memory) or a number of bytes".to_owned()),
            ),
        }
    }
    if v.entries.contains_key("MemoryCheckSec") {
        limits.memory_check = Some(super::values::secs(cx, v, "MemoryCheckSec", None));
    }
    limits.nice = int_in(cx, v, "Nice", -20, 19);
    limits.oom_score_adjust = int_in(cx, v, "OOMScoreAdjust", -1000, 1000);
    if let Some(value) = v.entries.get("UMask") {
        let text = value.get_ref().as_str().unwrap_or_default();
        match u32::from_str_radix(text.trim(), 8) {
            Ok(m) if m <= 0o777 && !text.trim().is_empty() => limits.umask = Some(m),
            _ => cx.at(
                value.span(),
                format!(
                    "`UMask` is \"{}\"; expected an octal mode from \"0000\" to \"0777\"",
                    esc(text)
                ),
                Some("write it like \"0027\"".to_owned()),
            ),
        }
    }
    if let Some(value) = v.entries.get("Group") {
        let text = value.get_ref().as_str().unwrap_or_default();
        if name_ok(cx, "Group", text, value.span()) {
            limits.group = Some(text.to_owned());
        }
    }
    for (text, span) in strings(v, "SupplementaryGroups") {
        // systemd takes space-separated lists inside one string too.
        for word in text.split_whitespace() {
            if !limits.supplementary_groups.iter().any(|g| g == word) {
                limits.supplementary_groups.push(word.to_owned());
            }
        }
        if text.trim().is_empty() {
            name_ok(cx, "SupplementaryGroups", "", span);
        }
    }
    {
        let items = strings(v, "EnvironmentFile");
        for (text, span) in items {
            let (optional, path) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.as_str()),
            };
            if path.is_empty() || path.contains('\0') {
                cx.at(
                    span,
                    "`EnvironmentFile` entry is empty or has a NUL; expected a path".to_owned(),
                    None,
                );
                continue;
            }
            limits
                .environment_files
                .push((service_dir.join(path), optional));
        }
    }
    limits
}

/// A string-or-array key's strings, each with its place.
fn strings(v: &Values<'_>, key: &str) -> Vec<(String, std::ops::Range<usize>)> {
    match v.entries.get(key).map(|v| (v, v.get_ref())) {
        Some((v, DeValue::String(s))) => vec![(s.to_string(), v.span())],
        Some((_, DeValue::Array(items))) => items
            .iter()
            .filter_map(|i| Some((i.get_ref().as_str()?.to_owned(), i.span())))
            .collect(),
        _ => Vec::new(),
    }
}

const RLIMIT_HINT: &str =
    "write a number (1024), \"soft:hard\" (\"1024:4096\"), \"infinity\", or bytes with K/M/G (\"512M\")";

fn name_ok(cx: &mut Ctx<'_>, key: &str, text: &str, span: std::ops::Range<usize>) -> bool {
    if text.trim().is_empty() || text.contains('\0') {
        cx.at(
            span,
            format!("`{key}` is empty or has a NUL; expected a group name or id"),
            None,
        );
        return false;
    }
    true
}

fn int_in(cx: &mut Ctx<'_>, v: &Values<'_>, key: &str, min: i64, max: i64) -> Option<i32> {
    let value = v.entries.get(key)?;
    let n = value
        .get_ref()
        .as_integer()
        .and_then(|n| i64::from_str_radix(n.as_str(), n.radix()).ok());
    match n {
        Some(n) if (min..=max).contains(&n) => i32::try_from(n).ok(),
        _ => {
            let shown = cx.literal(value.span(), "a number out of range");
            cx.at(
                value.span(),
                format!("`{key}` is {shown}; expected an integer from {min} to {max}"),
                None,
            );
            None
        }
    }
}

/// `N`, `"soft:hard"`, `"infinity"`; with `bytes`, K/M/G suffixes
/// (1024-based). Soft above hard is an error.
pub fn parse_rlimit(text: &str, bytes: bool) -> Result<(u64, u64), String> {
    let (soft, hard) = match text.split_once(':') {
        Some((s, h)) => (one_limit(s, bytes)?, one_limit(h, bytes)?),
        None => {
            let n = one_limit(text, bytes)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err("the soft limit is above the hard limit".to_owned());
    }
    Ok((soft, hard))
}

fn one_limit(text: &str, bytes: bool) -> Result<u64, String> {
    let text = text.trim();
    if text == "infinity" {
        return Ok(INFINITY);
    }
    let (digits, shift) = match text.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return Err(format!("`{c}` is not a size suffix; expected K, M, G or T")),
            };
            if !bytes {
                return Err(format!(
                    "`{c}` suffixes are for byte limits; expected a plain number"
                ));
            }
            (&text[..at], shift)
        }
        _ => (text, 0),
    };
    // A whole number, or with a suffix a decimal one ("1.5G", as systemd).
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !numeric(whole) || !numeric(frac) || (shift == 0 && digits.contains('.'))
    {
        return Err("expected a non-negative whole number or \"infinity\"".to_owned());
    }
    let too_large = || "too large; write \"infinity\" for no limit".to_owned();
    let mut n = whole
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(too_large)?;
    if !frac.is_empty() {
        // The fraction of the unit, in whole bytes (rounded down).
        let digits = frac.len().min(18) as u32;
        let part: u128 = frac[..digits as usize].parse().unwrap_or(0);
        n = n
            .checked_add(((part << shift) / 10u128.pow(digits)) as u64)
            .ok_or_else(too_large)?;
    }
    if n == INFINITY {
        return Err(too_large());
    }
    Ok(n)
}

/// `"50%"` of MemoryMax: that share of the machine's physical memory
/// (as systemd reads it), in bytes.
fn percent_of_memory(pct: &str) -> Result<u64, String> {
    let share: f64 = pct
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
        .ok_or("expected a percentage from 0 to 100, like \"50%\"")?;
    // SAFETY: sysconf only reads system values.
    let (pages, size) = unsafe {
        (
            nix::libc::sysconf(nix::libc::_SC_PHYS_PAGES),
            nix::libc::sysconf(nix::libc::_SC_PAGESIZE),
        )
    };
    let total = u64::try_from(pages)
        .ok()
        .zip(u64::try_from(size).ok())
        .and_then(|(p, s)| p.checked_mul(s))
        .filter(|&t| t > 0)
        .ok_or("the machine's memory size is unknown; write a size like \"200M\"")?;
    Ok((total as f64 * share / 100.0) as u64)
}

/// A size key (LogMaxBytes): a number of bytes, `"10M"` (`K`/`M`/`G`,
/// 1024-based), or `"infinity"`, read as 0 (no limit).
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    match one_limit(text, true)? {
        INFINITY => Ok(0),
        n => Ok(n),
    }
}

/// A size key's value; absent or bad (reported), the table's default.
pub(super) fn size(cx: &mut Ctx<'_>, v: &Values<'_>, key: &str) -> u64 {
    let default = u64::try_from(super::schema::default_count(key)).unwrap_or(0);
    let Some(value) = v.entries.get(key) else {
        return default;
    };
    let parsed = match value.get_ref() {
        // Beyond i64 it was reported with the file's shape.
        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| "expected 0 or more bytes".to_owned()),
        DeValue::String(s) => parse_size(s),
        _ => Err(String::new()),
    };
    match parsed {
        Ok(n) => n,
        Err(why) => {
            let shown = cx.literal(value.span(), "a value out of range");
            cx.at(
                value.span(),
                format!("`{key}` is {shown}: {why}"),
                Some("write a number of bytes or a size like \"10M\"; 0 = never".to_owned()),
            );
            default
        }
    }
}

/// `200M`, `1.5G`, `512K`, `100B`: a size as reasons and `status` show it.
pub fn format_bytes(n: u64) -> String {
    for (shift, unit) in [(30, 'G'), (20, 'M'), (10, 'K')] {
        if n >= 1 << shift {
            let whole = n >> shift;
            let tenths = ((n & ((1 << shift) - 1)) * 10) >> shift;
            return if tenths == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{tenths}{unit}")
            };
        }
    }
    format!("{n}B")
}

/// Parses an EnvironmentFile (systemd's format): `KEY=VALUE` lines, blank
/// lines and `#`/`;` comments skipped, an optional `export `, values in
/// single quotes taken as they are, in double quotes with `\"`, `\\`, `\$`
/// and `\n` escapes, unquoted values trimmed (a trailing `\` joins the next
/// line). A line that is not `KEY=VALUE` is an error naming its line.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE", i + 1));
        };
        let key = key.trim();
        if !super::values::is_var_name(key) {
            return Err(format!(
                "line {}: `{}` is not a variable name",
                i + 1,
                esc(key)
            ));
        }
        let value = value.trim_start();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            let mut rest = rest.to_owned();
            while !rest.contains('\'') {
                match lines.next() {
                    Some((_, more)) => {
                        rest.push('\n');
                        rest.push_str(more);
                    }
                    None => return Err(format!("line {}: unterminated ' quote", i + 1)),
                }
            }
            let end = rest.find('\'').unwrap_or(rest.len());
            rest[..end].to_owned()
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut raw = rest.to_owned();
            loop {
                if let Some(v) = double_quoted(&raw) {
                    break v;
                }
                match lines.next() {
                    Some((_, more)) => {
                        raw.push('\n');
                        raw.push_str(more);
                    }
                    None => return Err(format!("line {}: unterminated \" quote", i + 1)),
                }
            }
        } else {
            let mut v = value.trim_end().to_owned();
            while v.ends_with('\\') {
                v.pop();
                match lines.next() {
                    Some((_, more)) => v.push_str(more.trim()),
                    None => break,
                }
            }
            v
        };
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// The value of a double-quoted string up to its closing quote, or `None`
/// if it does not close in `raw`.
fn double_quoted(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                '\n' => {}
                c @ ('"' | '\\' | '$' | '`') => out.push(c),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    None
}

/// Reads the unit's EnvironmentFiles, in order: missing optional files are
/// skipped; a missing required file or a bad line is the error to fail the
/// start with.
pub fn read_env_files(files: &[(PathBuf, bool)]) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut out = Vec::new();
    for (path, optional) in files {
        match std::fs::read_to_string(path) {
            Ok(text) => out.extend(parse_env_file(&text).map_err(|why| EnvFileError {
                path: path.clone(),
                why,
                unreadable: false,
            })?),
            Err(e) if *optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(EnvFileError {
                    path: path.clone(),
                    why: e.to_string(),
                    unreadable: true,
                })
            }
        }
    }
    Ok(out)
}

/// Why an EnvironmentFile gave no variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    pub path: PathBuf,
    /// The read error, or what is wrong where (a parse error).
    pub why: String,
    /// It could not be read (else: read, but not understood).
    pub unreadable: bool,
}

impl std::fmt::Display for EnvFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        write!(f, "EnvironmentFile {path}: {}", self.why)?;
        if self.unreadable {
            write!(f, "; create it, or write \"-{path}\" to make it optional")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_values() {
        // N, soft:hard, infinity and byte suffixes; soft above hard and suffixes on counts refused.
        assert_eq!(parse_rlimit("1024", false), Ok((1024, 1024)));
        assert_eq!(parse_rlimit("100:200", false), Ok((100, 200)));
        assert_eq!(parse_rlimit("infinity", true), Ok((INFINITY, INFINITY)));
        assert_eq!(parse_rlimit("1K:infinity", true), Ok((1024, INFINITY)));
        // systemd's forms: decimals with a suffix, T and beyond.
        assert_eq!(parse_rlimit("1.5G", true), Ok((3 << 29, 3 << 29)));
        assert_eq!(parse_rlimit("1T", true), Ok((1 << 40, 1 << 40)));
        assert!(parse_rlimit("1.5", true).is_err());
        assert!(parse_rlimit("2X", true).is_err());
        assert!(parse_rlimit("16E", true).is_err(), "2^64 is past the end");
        assert_eq!(parse_rlimit("512M", true), Ok((512 << 20, 512 << 20)));
        assert_eq!(parse_rlimit("2G", true), Ok((2 << 30, 2 << 30)));
        assert!(parse_rlimit("200:100", false).is_err());
        assert!(parse_rlimit("1K", false).is_err());
        assert!(parse_rlimit("-1", false).is_err());
        assert!(parse_rlimit("", false).is_err());
        assert!(parse_rlimit("99999999999999999999", false).is_err());
        assert!(parse_rlimit("lots", false).is_err());
    }

    #[test]
    fn systemd_forms_of_limit_cpu_and_memory_max_read_as_systemd_reads_them() {
        // LimitCPU as a time span (seconds), MemoryMax as a share of the machine's memory.
        let dir = std::path::Path::new("/srv");
        let unit = |keys: &str| {
            crate::unit::parse(
                "u",
                &dir.join("u.service"),
                &format!("[service]\nExecStart = \"x\"\n{keys}\n"),
                dir,
            )
        };
        let u = unit("LimitCPU = \"1min 30s\"").expect("a time span");
        assert_eq!(
            (u.limits.rlimits[0].soft, u.limits.rlimits[0].hard),
            (90, 90)
        );
        let u = unit("MemoryMax = \"50%\"").expect("a share");
        let total = percent_of_memory("100").expect("the memory size");
        assert_eq!(u.limits.memory_max, Some(total / 2));
        assert!(unit("MemoryMax = \"150%\"").is_err());
        assert!(unit("LimitNOFILE = \"1min\"").is_err());
    }

    #[test]
    fn sizes_as_shown() {
        // Whole units without a fraction, one decimal (rounded down) otherwise.
        assert_eq!(format_bytes(200 << 20), "200M");
        assert_eq!(format_bytes((1 << 30) + (1 << 29)), "1.5G");
        assert_eq!(format_bytes(1536), "1.5K");
        assert_eq!(format_bytes(100), "100B");
    }

    #[test]
    fn env_file_format() {
        // Comments, blank lines, export, both quotes, escapes, continuation.
        let text = "# c\n; c\n\nA=1\nexport B = two words \nC='x \"y\" $z'\nD=\"q \\\"r\\\" \\$s\"\nE=\"multi\nline\"\nF=a\\\n  b\nG=\n";
        let got = parse_env_file(text).unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "x \"y\" $z"),
            ("D", "q \"r\" $s"),
            ("E", "multi\nline"),
            ("F", "ab"),
            ("G", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            parse_env_file("A=1\nnot a line\n"),
            Err("line 2: expected KEY=VALUE".to_owned())
        );
        assert!(parse_env_file("A=\"open\n").is_err());
    }
}
