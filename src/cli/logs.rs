//! `logs NAME [-n N] [-f]`: read a service's log file directly from the
//! home. No daemon is needed, so lines written while none ran are shown too.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::paths::Home;

/// How often `-f` looks for new output (client side only; the daemon never polls).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

pub fn show(home: &Home, name: &str, lines: usize, follow: bool) -> Result<(), Error> {
    if !crate::unit::is_valid_name(name) {
        return Err(Error::failed(format!("`{name}` is not a unit name")));
    }
    let path = home.service_log(name);
    if !path.exists() && !follow {
        return Err(Error::failed_hint(
            format!(
                "no output from `{name}` yet ({} does not exist)",
                path.display()
            ),
            format!("start it with `diakonos start {name}`; `diakonos list` shows the units"),
        ));
    }
    let mut out = io::stdout().lock();
    for line in tail_lines(&path, lines) {
        if writeln!(out, "{line}").is_err() {
            return Ok(()); // stdout closed (`| head`): nothing more to do.
        }
    }
    let _ = out.flush();
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
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(".1");
        let mut older = last_lines_of(&PathBuf::from(rotated), n - lines.len());
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
    let mut buf: Vec<u8> = Vec::new();
    const BLOCK: u64 = 8192;
    loop {
        // One more newline than lines wanted (the last line may end in one).
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        if newlines > n || pos == 0 {
            break;
        }
        let start = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; (pos - start) as usize];
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_exact(&mut block).is_err() {
            break;
        }
        block.extend_from_slice(&buf);
        buf = block;
        pos = start;
    }
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
    let mut pos = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut inode = std::fs::metadata(path).map(|m| m.ino()).ok();
    let mut out = io::stdout();
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if Some(meta.ino()) != inode || meta.len() < pos {
            // Replaced or truncated (rotation): read the new file from the start.
            inode = Some(meta.ino());
            pos = 0;
        }
        if meta.len() == pos {
            continue;
        }
        let Ok(mut file) = File::open(path) else {
            continue;
        };
        if file.seek(SeekFrom::Start(pos)).is_err() {
            continue;
        }
        let mut chunk = Vec::new();
        if file.read_to_end(&mut chunk).is_err() {
            continue;
        }
        pos += chunk.len() as u64;
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            return;
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
