//! `logs NAME [-n N] [-f]`: read a service's log file directly from the
//! home. No daemon is needed, so lines written while none ran are shown too.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::output;
use crate::error::Error;
use crate::paths::Home;

/// How often `-f` looks for new output (client side only; the daemon never polls).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// What `logs` asks when a unit's log file is missing.
pub struct Missing {
    /// The daemon runs with `--init` and no log files.
    pub output_to_daemon: bool,
    /// Where `start` would look for the unit: the running daemon's
    /// directory, else the one named, else the last daemon's.
    pub service_dir: std::path::PathBuf,
}

/// `missing`: asked only when the log file is missing.
pub fn show(
    home: &Home,
    name: &str,
    lines: usize,
    follow: bool,
    missing: impl FnOnce() -> Missing,
) -> Result<(), Error> {
    if !crate::unit::is_valid_name(name) {
        return Err(Error::failed(format!("`{name}` is not a unit name")));
    }
    let path = home.service_log(name);
    let missing = (!path.exists()).then(missing);
    if missing.as_ref().is_some_and(|m| m.output_to_daemon) {
        return Err(Error::failed_hint(
            format!(
                "`{name}` has no log file: its output goes to the daemon's stdout and stderr (daemon --init)"
            ),
            "read the container's output (`docker logs`, `kubectl logs`), or run the daemon with --file-logs",
        ));
    }
    if let Some(dir) = missing.as_ref().map(|m| &m.service_dir) {
        if !has_unit_file(dir, name) {
            let why = match dir.is_dir() {
                true => String::new(),
                false => ", which does not exist".to_owned(),
            };
            return Err(Error::failed_hint(
                format!(
                    "no unit named `{name}` in {}{why} (and no log of one)",
                    dir.display()
                ),
                "`diakonos list` shows the units",
            ));
        }
    }
    if missing.is_some() && !follow {
        return Err(Error::failed_hint(
            format!(
                "no output from `{name}` yet ({} does not exist)",
                path.display()
            ),
            format!("start it with `diakonos start {name}`; `diakonos list` shows the units"),
        ));
    }
    let mut out = io::BufWriter::new(output::stdout());
    for line in tail_lines(&path, lines) {
        if let Err(e) = writeln!(out, "{line}") {
            output::failed(&e); // `| head`: nothing more to do.
        }
    }
    if let Err(e) = out.flush() {
        output::failed(&e);
    }
    drop(out);
    if follow {
        follow_file(&path);
    }
    Ok(())
}

/// The last `n` lines of the log, reaching into the newest rotated file
/// (`NAME.log.1`) when the current one has fewer.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let mut lines = last_lines_of(path, n);
    if lines.len() < n {
        let mut older = last_lines_of(&rotated_of(path), n - lines.len());
        older.append(&mut lines);
        lines = older;
    }
    lines
}

/// Reads backwards from the end in blocks until `n` lines are in hand.
fn last_lines_of(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(len) = file.seek(SeekFrom::End(0)) else {
        return Vec::new();
    };
    let mut pos = len;
    // Blocks from the end backwards, each read and counted once (a very
    // long line is many blocks: no copying them again for every block).
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut newlines = 0;
    const BLOCK: u64 = 8192;
    // One more newline than lines wanted (the last line may end in one).
    while newlines <= n && pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; (pos - start) as usize];
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_exact(&mut block).is_err() {
            break;
        }
        newlines += block.iter().filter(|&&b| b == b'\n').count();
        blocks.push(block);
        pos = start;
    }
    let buf: Vec<u8> = blocks.into_iter().rev().flatten().collect();
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if pos > 0 && !lines.is_empty() {
        lines.remove(0); // Probably cut in the middle.
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

/// Prints new output as it arrives, across restarts and rotations, until
/// interrupted or stdout closes.
fn follow_file(path: &Path) {
    let mut at = Cursor::at_end(path);
    let mut out = output::stdout();
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        let chunk = at.read_new(path);
        if let Err(e) = out.write_all(&chunk) {
            output::failed(&e);
        }
    }
}

/// Where a follower is in one log: the position in the file (`inode`),
/// and the newest rotated file (`NAME.log.1`) as it was then.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    pos: u64,
    inode: Option<u64>,
    rotated: Option<Stamp>,
}

/// A file's identity and last change: a rotation rewrites `NAME.log.1`
/// (a new file, or the one old file truncated and copied into).
type Stamp = (u64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()))
}

/// `NAME.log.1`, the newest rotated file of `path`.
fn rotated_of(path: &Path) -> PathBuf {
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    PathBuf::from(rotated)
}

impl Cursor {
    /// At the end of the log at `path` as it is now.
    fn at_end(path: &Path) -> Cursor {
        let meta = std::fs::metadata(path).ok();
        Cursor {
            pos: meta.as_ref().map_or(0, |m| m.len()),
            inode: meta.map(|m| m.ino()),
            rotated: stamp(&rotated_of(path)),
        }
    }

    /// What was appended to the log at `path` since, moving on. A rotation
    /// (the file renamed away, or copied to a new `NAME.log.1` and
    /// truncated, which the length alone may not show once the new file
    /// has grown past `pos`): what was not read yet is at the end of
    /// `NAME.log.1` and comes first, then the new file from its start.
    fn read_new(&mut self, path: &Path) -> Vec<u8> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Vec::new();
        };
        let old = rotated_of(path);
        let rotated = stamp(&old);
        let mut chunk = Vec::new();
        let replaced = self.inode.is_some_and(|i| i != meta.ino());
        // A new NAME.log.1 counts once the log is shorter than it: before,
        // the copy is still under way (or the truncation to come), and the
        // log is read on.
        let copied = rotated.is_some()
            && rotated != self.rotated
            && std::fs::metadata(&old).is_ok_and(|m| meta.len() < m.len());
        let rotation = replaced || copied || meta.len() < self.pos;
        if rotation {
            if self.inode.is_some() {
                let _ = read_from(&old, self.pos, &mut chunk);
            }
            self.pos = 0;
        }
        self.inode = Some(meta.ino());
        if rotation || rotated == self.rotated {
            self.rotated = rotated;
        }
        if meta.len() > self.pos {
            if let Ok(n) = read_from(path, self.pos, &mut chunk) {
                self.pos += n as u64;
            }
        }
        chunk
    }
}

/// Appends the bytes of `path` from `pos` to its end to `buf`.
fn read_from(path: &Path, pos: u64, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(pos))?;
    file.read_to_end(buf)
}

/// Whether `dir` has a file of unit `name` on this host (`NAME.service`,
/// `NAME@HOST.service`; a link counts, dangling or not: `list` shows it).
fn has_unit_file(dir: &Path, name: &str) -> bool {
    let host = crate::unit::hostname();
    [format!("{name}.service"), format!("{name}@{host}.service")]
        .iter()
        .any(|file| dir.join(file).symlink_metadata().is_ok())
}

/// The units with a log in `dir` (`NAME.log`), in name order.
fn logged_units(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let file = e.file_name();
                    let name = file.to_str()?.strip_suffix(".log")?;
                    crate::unit::is_valid_name(name).then(|| name.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `logs` without a name: the last `lines` lines of every unit's log, each
/// prefixed `NAME | `, unit by unit in name order; `follow` then prints
/// every unit's new lines as they arrive (logs that appear later too).
pub fn show_all(home: &Home, lines: usize, follow: bool) -> Result<(), Error> {
    let dir = home.logs_dir();
    let names = logged_units(&dir);
    if names.is_empty() && !follow {
        return Err(Error::failed_hint(
            format!("no output from any unit yet (no logs in {})", dir.display()),
            "start one with `diakonos start NAME`; `diakonos list` shows the units",
        ));
    }
    // Where following starts is taken first: a log that appears while the
    // tails print is then read from its start, not missed.
    let start = follow.then(|| start_positions(&dir));
    let mut out = io::BufWriter::new(output::stdout());
    for name in &names {
        for line in tail_lines(&home.service_log(name), lines) {
            if let Err(e) = writeln!(out, "{name} | {line}") {
                output::failed(&e);
            }
        }
    }
    if let Err(e) = out.flush() {
        output::failed(&e);
    }
    drop(out);
    if let Some(start) = start {
        follow_all(&dir, start);
    }
    Ok(())
}

/// Where `follow_all` is in one unit's log.
struct Followed {
    at: Cursor,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
}

type Positions = std::collections::BTreeMap<String, Followed>;

/// The end of every log in `dir` now.
fn start_positions(dir: &Path) -> Positions {
    // Inserted one by one: a `collect` into the map would sort, and bring
    // a sort of its own into the binary (4 KiB).
    let mut files = Positions::new();
    for name in logged_units(dir) {
        let f = Followed {
            at: Cursor::at_end(&dir.join(format!("{name}.log"))),
            partial: Vec::new(),
        };
        files.insert(name, f);
    }
    files
}

/// Prints the new complete lines of every log in `dir` after `files`,
/// prefixed, as they arrive, across restarts and rotations, until stdout
/// closes.
fn follow_all(dir: &Path, mut files: Positions) {
    let mut out = output::stdout();
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        // A log that appeared since (a unit's first start) is read from its start.
        for name in logged_units(dir) {
            files.entry(name).or_insert(Followed {
                at: Cursor::default(),
                partial: Vec::new(),
            });
        }
        let mut text = Vec::new();
        for (name, f) in files.iter_mut() {
            let path = dir.join(format!("{name}.log"));
            let chunk = f.at.read_new(&path);
            f.partial.extend_from_slice(&chunk);
            if let Some(end) = f.partial.iter().rposition(|&b| b == b'\n') {
                let rest = f.partial.split_off(end + 1);
                let complete = std::mem::replace(&mut f.partial, rest);
                for line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
                    text.extend_from_slice(name.as_bytes());
                    text.extend_from_slice(b" | ");
                    text.extend_from_slice(line);
                    text.push(b'\n');
                }
            }
        }
        if let Err(e) = out.write_all(&text) {
            output::failed(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("diakonos-logs-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn tail_returns_the_last_lines_across_blocks() {
        // Tail finds the last N lines of a file larger than one read block.
        let dir = scratch("tail");
        let path = dir.join("a.log");
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let got = tail_lines(&path, 3);
        assert_eq!(got, vec!["line 4997", "line 4998", "line 4999"]);
        assert_eq!(tail_lines(&path, 0), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn following_loses_no_line_at_a_rotation() {
        // Lines appended after the follower's last read and before the
        // rotation are read from NAME.log.1, by copy-and-truncate (a running
        // service's log) and by rename (a closed one).
        use std::fs::OpenOptions;
        let dir = scratch("follow");
        let path = dir.join("a.log");
        let append = |text: &str| {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        append("1\n");
        let mut at = Cursor::default();
        assert_eq!(at.read_new(&path), b"1\n");
        append("2\n");
        // Copy and truncate; the follower looks in between, and reads on.
        std::fs::copy(&path, dir.join("a.log.1")).unwrap();
        append("2b\n");
        assert_eq!(at.read_new(&path), b"2\n2b\n");
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append("3\n");
        assert_eq!(at.read_new(&path), b"3\n");
        append("4\n");
        // Renamed away; a new file.
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        append("5\n");
        assert_eq!(at.read_new(&path), b"4\n5\n");
        assert_eq!(at.read_new(&path), b"");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tail_returns_a_line_longer_than_many_blocks_whole() {
        // A service that writes one huge line (read block by block from the end).
        let dir = scratch("long");
        let path = dir.join("a.log");
        let long = "x".repeat(100_000);
        std::fs::write(&path, format!("first\n{long}\nlast\n")).unwrap();
        assert_eq!(tail_lines(&path, 2), vec![long.clone(), "last".to_owned()]);
        assert_eq!(
            tail_lines(&path, 5),
            vec!["first".to_owned(), long, "last".to_owned()]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tail_reaches_into_the_rotated_file() {
        // When the current log is short, older lines come from NAME.log.1.
        let dir = scratch("rotated");
        let path = dir.join("a.log");
        std::fs::write(dir.join("a.log.1"), "old 1\nold 2\n").unwrap();
        std::fs::write(&path, "new 1\n").unwrap();
        assert_eq!(tail_lines(&path, 2), vec!["old 2", "new 1"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
