//! Hash maps with a fixed hasher. Their keys are the daemon's and the
//! CLI's own (pids, tokens, service ids, names from the user's own unit
//! files), nothing a remote peer chooses, so std's per-process random keys
//! (read from the kernel at the first map, with an error path that links
//! `io::Error`'s debug printer into the static binary) buy nothing here.

use std::hash::{BuildHasherDefault, Hasher};

pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fx>>;
pub type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<Fx>>;

/// The multiply-rotate hash of rustc's own maps (FxHash): one
/// multiplication per word.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        // The product's best bits are its high ones; the table indexes by
        // the low ones.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn write_i32(&mut self, n: i32) {
        self.add(u64::from(n as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_small_keys_and_tells_strings_apart() {
        let hash = |f: &dyn Fn(&mut Fx)| {
            let mut h = Fx::default();
            f(&mut h);
            h.finish()
        };
        // Consecutive pids land in different buckets of a small table and
        // differ in the top 7 bits the table's control bytes use.
        let low: HashSet<u64> = (0..64u32)
            .map(|pid| hash(&|h| h.write_u32(pid)) & 63)
            .collect();
        assert!(low.len() > 32, "{} buckets of 64", low.len());
        let top: HashSet<u64> = (0..64u32)
            .map(|pid| hash(&|h| h.write_u32(pid)) >> 57)
            .collect();
        assert!(top.len() > 32, "{} control values of 64", top.len());
        let mut names: HashMap<String, usize> = HashMap::default();
        for i in 0..1000 {
            names.insert(format!("web-{i}"), i);
        }
        assert_eq!(names.len(), 1000);
        assert_eq!(names.get("web-517"), Some(&517));
        assert_ne!(hash(&|h| h.write(b"ab")), hash(&|h| h.write(b"ba")));
    }
}
