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

/// `NAME.log.N` -> `NAME.log.N+by` for the N that stay within `keep`
/// (the oldest are replaced; `by` new files take 1..=by).
fn shift_old_files(path: &Path, keep: u32, by: u32) -> io::Result<()> {
    for n in (1..=keep.saturating_sub(by)).rev() {
        let from = rotated(path, n);
        if from.exists() {
            fs::rename(&from, rotated(path, n + by))?;
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
        shift_old_files(path, keep, 1)?;
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
/// A log that grew past its limit between two checks is cut into files of
/// at most the limit, each ending with a whole line (a line longer than the
/// limit is kept whole up to 1 MiB more): `NAME.log.1` the newest part, as
/// many older ones as `keep` allows. The copy is bounded: at most `keep`
/// times the limit, and at most 64 MiB (at least twice the limit, 1 MiB),
/// so a service that wrote gigabytes between two checks costs one copy of
/// that size (the loop waits for it). What came before is dropped, and said
/// so in the daemon's log. A copy the disk has no room for is dropped too:
/// the log is emptied all the same, so a full disk gets its space back.
pub fn rotate_if_needed(path: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    if !over_limit(path, max_bytes)? {
        return Ok(false);
    }
    // Read, then truncated, through one descriptor.
    let mut log = OpenOptions::new().read(true).write(true).open(path)?;
    if keep > 0 {
        let most = max_bytes
            .saturating_mul(u64::from(keep))
            .min(64 << 20)
            .max(max_bytes.saturating_mul(2).max(1 << 20));
        let len = log.metadata()?.len();
        match copy_parts(&mut log, path, max_bytes, keep, most, || {}) {
            Ok(0) => {}
            // What the parts hold: what came after the dropped bytes.
            Ok(dropped) => log::warn!(
                "{}: {dropped} bytes written faster than its limit allowed were dropped; the rotated files hold the {} bytes written after them",
                path.display(),
                len.saturating_sub(dropped),
            ),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {
                log::warn!(
                    "{}: no room on the disk for its rotated copy: emptied without one",
                    path.display(),
                );
            }
            Err(e) => return Err(e),
        }
    }
    log.set_len(0)?;
    Ok(true)
}

/// Copies the last `most` bytes of the log `src` (at `path`), from the
/// first line that starts in them, into `NAME.log.1` (the newest part)
/// and, when they are more than twice `max`, older parts of at most `max`
/// bytes each, `keep` at most, the old files shifted up to make room; then
/// what was written meanwhile, into `NAME.log.1` (`after_round` runs after
/// each round of that copy: a test writes there). Returns how many bytes
/// before the oldest part were dropped.
fn copy_parts(
    src: &mut File,
    path: &Path,
    max: u64,
    keep: u32,
    most: u64,
    mut after_round: impl FnMut(),
) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = src.metadata()?.len();
    let mut from = len.saturating_sub(most);
    if from > 0 {
        // Up to the next line (within 1 MiB; a longer line is cut).
        from = newline_after(src, from, len)?.unwrap_or(from);
    }
    // Where each part starts, newest first.
    let starts = part_starts(src, from, len, max, keep)?;
    let parts = starts.len() as u32;
    shift_old_files(path, keep, parts)?;
    let mut end = len;
    for (i, &start) in starts.iter().enumerate() {
        let copy = rotated(path, i as u32 + 1);
        let mut dst = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(&copy)?;
        src.seek(SeekFrom::Start(start))?;
        let copied = if i > 0 {
            io::copy(&mut src.by_ref().take(end - start), &mut dst).map(|_| ())
        } else {
            // The newest part, then what came during the copy: a few
            // rounds at most, as a service may write faster than the copy
            // goes, which must not chase it for ever.
            let (mut at, mut now, mut result) = (start, len, Ok(()));
            for _ in 0..4 {
                if now <= at {
                    break;
                }
                result = io::copy(&mut src.by_ref().take(now - at), &mut dst).map(|_| ());
                if result.is_err() {
                    break;
                }
                after_round();
                at = now;
                now = src.metadata()?.len();
            }
            result
        };
        if let Err(e) = copied {
            let _ = fs::remove_file(&copy);
            return Err(e);
        }
        end = start;
    }
    Ok(end)
}

/// Where the parts of `[from, len)` of `src` start, newest first: one
/// part when it is at most twice `max` (a check came late), else parts of
/// at most `max` bytes from the end, `keep` at most, each starting with a
/// line (a line longer than `max` is kept whole when it starts after
/// `from`).
fn part_starts(src: &File, from: u64, len: u64, max: u64, keep: u32) -> io::Result<Vec<u64>> {
    if len - from <= max.saturating_mul(2) {
        return Ok(vec![from]);
    }
    let mut starts = Vec::new();
    let mut end = len;
    while end > from && starts.len() < keep as usize {
        let lo = end.saturating_sub(max.max(1)).max(from);
        let start = if lo == from {
            from
        } else {
            match newline_after(src, lo, end)? {
                Some(p) if p < end => p,
                // One line from before `lo` to `end`: it starts after the
                // newline before it.
                _ => newline_before(src, from, lo)?.unwrap_or(from),
            }
        };
        starts.push(start);
        end = start;
    }
    Ok(starts)
}

/// The position just after the last newline of `src` in `[lo, hi)`, if
/// that is past `lo`.
fn newline_before(src: &File, lo: u64, hi: u64) -> io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 << 10];
    let mut top = hi;
    while top > lo {
        let n = (top - lo).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], top - n as u64)?;
        if let Some(p) = buf[..n].iter().rposition(|&b| b == b'\n') {
            let cut = top - n as u64 + p as u64 + 1;
            return Ok((cut > lo).then_some(cut));
        }
        top -= n as u64;
    }
    Ok(None)
}

/// The position just after the first newline of `src` at or after `at`
/// (before `len`, within 1 MiB).
fn newline_after(src: &File, at: u64, len: u64) -> io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = at;
    let stop = len.min(at.saturating_add(1 << 20));
    while pos < stop {
        let n = (stop - pos).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], pos)?;
        if let Some(p) = buf[..n].iter().position(|&b| b == b'\n') {
            return Ok(Some(pos + p as u64 + 1));
        }
        pos += n as u64;
    }
    Ok(None)
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

    /// A scratch directory of this process, removed when dropped (a failed
    /// test's too).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("diakonos-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_rotating_file_stays_near_its_limit_and_keeps_n_old_files() {
        // 100 writes of 10 bytes with a 50-byte limit and 2 old files: every file holds at most one write over the limit, and there is no third.
        let scratch = Scratch::new("rotfile");
        let dir = &scratch.0;
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
    }

    #[test]
    fn rotation_shifts_old_files_and_keeps_appending() {
        // A log over its limit moves to .1 (older ones shift up), and an open appender continues at the start.
        let scratch = Scratch::new("rotate");
        let dir = &scratch.0;
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
    }

    #[test]
    fn a_log_far_over_its_limit_is_cut_into_files_of_the_limit_with_whole_lines() {
        // 3 MiB of lines under a 100 000-byte limit, 3 files kept: .1 .2 .3 are the last three parts of at most the limit, each whole lines, in order, ending with the last line; the log is emptied. A log under twice its limit (a late check) stays one file.
        let scratch = Scratch::new("tail");
        let dir = &scratch.0;
        let path = dir.join("big.log");
        let mut text = String::new();
        for i in 0..300_000 {
            text.push_str(&format!("line {i:05}\n"));
        }
        fs::write(&path, &text).unwrap();
        assert!(rotate_if_needed(&path, 100_000, 3).unwrap());
        let parts: Vec<String> = (1..=3)
            .map(|n| fs::read_to_string(rotated(&path, n)).unwrap())
            .collect();
        for p in &parts {
            assert!(p.len() <= 100_000 && p.len() > 99_000, "{} bytes", p.len());
            assert!(p.starts_with("line ") && p.ends_with('\n'));
        }
        assert!(parts[0].ends_with("line 299999\n"));
        let joined: String = parts.iter().rev().map(String::as_str).collect();
        assert!(
            text.ends_with(&joined),
            "the parts are not the log's end, in order"
        );
        assert!(!rotated(&path, 4).exists());
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        // 150 000 bytes under the same limit: one file, whole.
        let small: String = text.chars().take(150_000).collect();
        fs::write(&path, &small).unwrap();
        assert!(rotate_if_needed(&path, 100_000, 3).unwrap());
        assert_eq!(fs::read_to_string(rotated(&path, 1)).unwrap(), small);
        assert_eq!(fs::read_to_string(rotated(&path, 2)).unwrap(), parts[0]);
    }

    #[test]
    fn what_a_service_writes_during_the_copy_is_copied_too() {
        // A line appended (as a service appends) while the first round of the copy ends is in the copy: the copy looks again before it stops.
        let scratch = Scratch::new("during");
        let dir = &scratch.0;
        let path = dir.join("busy.log");
        fs::write(&path, "one\ntwo\n").unwrap();
        let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut rounds = 0;
        let dropped = copy_parts(&mut log, &path, 4, 2, 1 << 20, || {
            rounds += 1;
            if rounds == 1 {
                writer.write_all(b"three\n").unwrap();
            }
        })
        .unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(rounds, 2);
        // Under twice the limit: one part.
        assert_eq!(
            fs::read_to_string(rotated(&path, 1)).unwrap(),
            "one\ntwo\nthree\n"
        );
    }

    #[test]
    fn a_closed_log_is_rotated_by_renames_without_a_copy() {
        // The log over its limit becomes .1 itself (same inode: nothing was
        // copied), older files shift up, and the oldest beyond keep goes.
        use std::os::unix::fs::MetadataExt;
        let scratch = Scratch::new("rotclosed");
        let dir = &scratch.0;
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
    }
}
