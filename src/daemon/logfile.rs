//! Size-based rotation of service logs and of the daemon's own log.
//!
//! Services write their log themselves, through a file descriptor opened in
//! append mode (no pipe to the daemon, so a service never blocks or dies
//! because the daemon is gone). The daemon therefore cannot rotate by
//! reopening: it rotates by copy-and-truncate. `NAME.log.N-1` -> `NAME.log.N`,
//! the current log is copied to `NAME.log.1`, then truncated to zero; the
//! writers' append offsets follow the truncation. What a service writes
//! while the copy runs is copied too (the copy looks again before it
//! stops), so only bytes written between that last look and the truncation
//! (one system call apart, on one descriptor) can be lost; a log can
//! overshoot its limit by what a service writes between two checks.
//!
//! A log nobody has open (a service about to be spawned) is rotated by
//! renames alone ([`rotate_closed_if_needed`]): no copy, so a large log
//! costs the spawn path nothing.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `NAME.log.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Whether `path` is larger than `max_bytes` (0 = never).
fn over_limit(path: &Path, max_bytes: u64) -> io::Result<bool> {
    if max_bytes == 0 {
        return Ok(false);
    }
    match fs::metadata(path) {
        Ok(m) => Ok(m.len() > max_bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `NAME.log.N-1` -> `NAME.log.N` for N = keep..2 (the oldest is replaced).
fn shift_old_files(path: &Path, keep: u32) -> io::Result<()> {
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    Ok(())
}

/// Rotates a log that no process has open (its service is about to be
/// spawned) if it is larger than `max_bytes` (0 = never), keeping `keep`
/// old files: by renames alone, however large it is; the spawn creates a
/// new one. Returns whether it rotated.
pub fn rotate_closed_if_needed(path: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    if !over_limit(path, max_bytes)? {
        return Ok(false);
    }
    if keep > 0 {
        shift_old_files(path, keep)?;
        fs::rename(path, rotated(path, 1))?;
    } else {
        fs::remove_file(path)?;
    }
    Ok(true)
}

/// Rotates `path` if it is larger than `max_bytes` (0 = never), keeping
/// `keep` old files, by copy-and-truncate (writers may hold it open).
/// Returns whether it rotated.
///
/// The copy is bounded: `NAME.log.1` gets at most twice the limit (at
/// least 1 MiB), the last of the log from a line's start, so a service that
/// wrote gigabytes between two checks costs one copy of that size, never a
/// copy of all it wrote (the loop waits for it). What came before is
/// dropped, and said so in the daemon's log. A copy the disk has no room
/// for is dropped too: the log is emptied all the same, so a full disk
/// gets its space back.
pub fn rotate_if_needed(path: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    if !over_limit(path, max_bytes)? {
        return Ok(false);
    }
    // Read, then truncated, through one descriptor.
    let mut log = OpenOptions::new().read(true).write(true).open(path)?;
    if keep > 0 {
        shift_old_files(path, keep)?;
        let copy = rotated(path, 1);
        let most = max_bytes.saturating_mul(2).max(1 << 20);
        match copy_tail(&mut log, &copy, most, || {}) {
            Ok(0) => {}
            Ok(dropped) => log::warn!(
                "{}: {dropped} bytes written faster than its limit allowed were dropped; {} holds the last {most}",
                path.display(),
                copy.display()
            ),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {
                let _ = fs::remove_file(&copy);
                log::warn!(
                    "{}: no room on the disk for {}: emptied without a copy",
                    path.display(),
                    copy.display()
                );
            }
            Err(e) => return Err(e),
        }
    }
    log.set_len(0)?;
    Ok(true)
}

/// Copies the last `max` bytes of the log `src` into `copy` (replaced),
/// from the first line that starts in them when there is one, then what
/// was written meanwhile (`after_round` runs after each round of the copy:
/// a test writes there); the bytes before that are dropped: how many.
fn copy_tail(
    src: &mut File,
    copy: &Path,
    max: u64,
    mut after_round: impl FnMut(),
) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = src.metadata()?.len();
    let mut from = len.saturating_sub(max);
    if from > 0 {
        // Up to the next line (within 4 KiB; a longer line is cut).
        src.seek(SeekFrom::Start(from))?;
        let mut head = [0u8; 4096];
        let n = src.read(&mut head)?;
        if let Some(nl) = head[..n].iter().position(|&b| b == b'\n') {
            from += nl as u64 + 1;
        }
        src.seek(SeekFrom::Start(from))?;
    }
    let mut dst = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(copy)?;
    // What was there when we looked, then what came during the copy: a
    // few rounds at most, as a service may write faster than the copy
    // goes, which must not chase it for ever.
    let mut end = from;
    let mut now = len;
    for _ in 0..4 {
        if now <= end {
            break;
        }
        io::copy(&mut src.by_ref().take(now - end), &mut dst)?;
        after_round();
        end = now;
        now = src.metadata()?.len();
    }
    Ok(from)
}

/// An append-only log file that rotates itself (like [`rotate_if_needed`])
/// when a write finds it over `max_bytes`: the daemon's own log, written
/// through the daemon's logger. The check costs no system call until the bytes
/// written since the last look could have reached the limit.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    max_bytes: u64,
    keep: u32,
    /// The file's length as of the last look, plus what we wrote since.
    /// Others append too (the daemon's stdout and stderr), so it is only
    /// a lower bound: the real length is checked once it passes the limit.
    len: u64,
}

impl RotatingFile {
    /// Opens (creating, mode 0600) `path` for appending.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<RotatingFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            max_bytes,
            keep,
            len,
        })
    }

    /// Rotates before a write that would land in a file over the limit.
    fn check(&mut self) {
        if self.max_bytes == 0 || self.len <= self.max_bytes {
            return;
        }
        // A failed rotation (a full disk, a log on /dev/full) must not
        // cost the write itself; the next write past the limit tries again.
        let _ = rotate_if_needed(&self.path, self.max_bytes, self.keep);
        self.len = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
    }
}

impl io::Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check();
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_rotating_file_stays_near_its_limit_and_keeps_n_old_files() {
        // 100 writes of 10 bytes with a 50-byte limit and 2 old files: every file holds at most one write over the limit, and there is no third.
        let dir = std::env::temp_dir().join(format!("diakonos-rotfile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("daemon.log");
        let mut log = RotatingFile::open(&path, 50, 2).unwrap();
        for i in 0..100 {
            writeln!(log, "line {i:04}").unwrap();
        }
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let len = fs::metadata(&p).unwrap().len();
            assert!(len > 0 && len <= 60, "{}: {len} bytes", p.display());
        }
        assert!(!rotated(&path, 3).exists());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("line 0099\n"), "{text}");
        // Without a limit it never rotates.
        let other = dir.join("other.log");
        let mut log = RotatingFile::open(&other, 0, 2).unwrap();
        for _ in 0..20 {
            log.write_all(b"0123456789").unwrap();
        }
        assert_eq!(fs::metadata(&other).unwrap().len(), 200);
        assert!(!rotated(&other, 1).exists());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn rotation_shifts_old_files_and_keeps_appending() {
        // A log over its limit moves to .1 (older ones shift up), and an open appender continues at the start.
        let dir = std::env::temp_dir().join(format!("diakonos-rotate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let mut writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        writer.write_all(b"first generation\n").unwrap();
        assert!(rotate_if_needed(&path, 4, 2).unwrap());
        writer.write_all(b"second generation\n").unwrap();
        assert!(rotate_if_needed(&path, 4, 2).unwrap());
        writer.write_all(b"third\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "third\n");
        assert_eq!(
            fs::read_to_string(rotated(&path, 1)).unwrap(),
            "second generation\n"
        );
        assert_eq!(
            fs::read_to_string(rotated(&path, 2)).unwrap(),
            "first generation\n"
        );
        assert!(!rotated(&path, 3).exists());
        // Under the limit nothing happens.
        assert!(!rotate_if_needed(&path, 1 << 20, 2).unwrap());
        assert!(!rotate_if_needed(&dir.join("missing.log"), 4, 2).unwrap());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_log_far_over_its_limit_keeps_only_its_last_part_from_a_line() {
        // 3 MiB of lines under a 1000-byte limit: .1 gets at most 1 MiB (twice the limit, at least 1 MiB), starting at a line and ending with the last one; the log is emptied.
        let dir = std::env::temp_dir().join(format!("diakonos-tail-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.log");
        let mut text = String::new();
        for i in 0..300_000 {
            text.push_str(&format!("line {i:05}\n"));
        }
        fs::write(&path, &text).unwrap();
        assert!(rotate_if_needed(&path, 1000, 2).unwrap());
        let kept = fs::read_to_string(rotated(&path, 1)).unwrap();
        assert!(kept.len() <= 1 << 20, "{} bytes kept", kept.len());
        assert!(kept.len() > (1 << 20) - 20, "{} bytes kept", kept.len());
        assert!(kept.starts_with("line ") && kept.ends_with("line 299999\n"));
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn what_a_service_writes_during_the_copy_is_copied_too() {
        // A line appended (as a service appends) while the first round of the copy ends is in the copy: the copy looks again before it stops.
        let dir = std::env::temp_dir().join(format!("diakonos-during-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("busy.log");
        fs::write(&path, "one\ntwo\n").unwrap();
        let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let copy = rotated(&path, 1);
        let mut rounds = 0;
        let dropped = copy_tail(&mut log, &copy, 1 << 20, || {
            rounds += 1;
            if rounds == 1 {
                writer.write_all(b"three\n").unwrap();
            }
        })
        .unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(rounds, 2);
        assert_eq!(fs::read_to_string(&copy).unwrap(), "one\ntwo\nthree\n");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_closed_log_is_rotated_by_renames_without_a_copy() {
        // The log over its limit becomes .1 itself (same inode: nothing was
        // copied), older files shift up, and the oldest beyond keep goes.
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("diakonos-rotclosed-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        fs::write(&path, "first generation\n").unwrap();
        assert!(rotate_closed_if_needed(&path, 4, 2).unwrap());
        fs::write(&path, "second generation\n").unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        assert!(rotate_closed_if_needed(&path, 4, 2).unwrap());
        assert!(!path.exists(), "the spawn creates the new log");
        assert_eq!(fs::metadata(rotated(&path, 1)).unwrap().ino(), inode);
        assert_eq!(
            fs::read_to_string(rotated(&path, 2)).unwrap(),
            "first generation\n"
        );
        fs::write(&path, "third generation\n").unwrap();
        assert!(rotate_closed_if_needed(&path, 4, 2).unwrap());
        assert_eq!(
            fs::read_to_string(rotated(&path, 2)).unwrap(),
            "second generation\n"
        );
        assert!(!rotated(&path, 3).exists());
        // keep = 0: the old log is dropped; under the limit nothing happens.
        fs::write(&path, "x".repeat(10)).unwrap();
        assert!(rotate_closed_if_needed(&path, 4, 0).unwrap());
        assert!(!path.exists());
        assert!(!rotate_closed_if_needed(&path, 4, 2).unwrap());
        let _ = fs::remove_dir_all(dir);
    }
}
