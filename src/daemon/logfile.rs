//! Size-based rotation of service logs.
//!
//! Services write their log themselves, through a file descriptor opened in
//! append mode (no pipe to the daemon, so a service never blocks or dies
//! because the daemon is gone). The daemon therefore cannot rotate by
//! reopening: it rotates by copy-and-truncate. `NAME.log.N-1` -> `NAME.log.N`,
//! the current log is copied to `NAME.log.1`, then truncated to zero; the
//! writers' append offsets follow the truncation. Lines written between the
//! copy and the truncation (microseconds) are lost; a log can overshoot its
//! limit by what a service writes between two checks.

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

/// Rotates `path` if it is larger than `max_bytes` (0 = never), keeping
/// `keep` old files. Returns whether it rotated.
pub fn rotate_if_needed(path: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    if max_bytes == 0 {
        return Ok(false);
    }
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max_bytes {
        return Ok(false);
    }
    if keep > 0 {
        for n in (1..keep).rev() {
            let from = rotated(path, n);
            if from.exists() {
                fs::rename(&from, rotated(path, n + 1))?;
            }
        }
        let mut src = File::open(path)?;
        let mut dst = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(rotated(path, 1))?;
        io::copy(&mut src, &mut dst)?;
    }
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
}
