//! The stacks the daemon's clones run on until their exec: small
//! mappings with a guard page, kept for the next children.

use std::ffi::c_void;
use std::io;

use nix::libc;

/// The stack a child runs on: an anonymous mapping of its own, with a
/// guard page at its low end, so a child that overflowed it would fault
/// instead of writing over the daemon's memory it shares. Kept for the
/// next child when it is done (up to [`Stack::POOL`] of them).
pub(super) struct Stack {
    base: *mut c_void,
}

thread_local! {
    /// Stacks no child uses any more, for the next ones.
    static SPARE: std::cell::RefCell<Vec<*mut c_void>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Stack {
    /// The whole mapping: a guard page and one page, of which the child
    /// uses less than a kilobyte.
    const LEN: usize = 8 * 1024;
    const GUARD: usize = 4096;
    /// Spare stacks kept: a burst of starts has many children under way
    /// at once, each with its stack until its exec. Each spare costs a
    /// resident page; [`trim_spare_stacks`] lets most go once none is.
    const POOL: usize = 64;
    /// Spares kept while no child is under way (for the next restart).
    const IDLE_POOL: usize = 1;

    pub(super) fn new() -> io::Result<Stack> {
        if let Some(base) = SPARE.with(|s| s.borrow_mut().pop()) {
            return Ok(Stack { base });
        }
        // SAFETY: a fresh private anonymous mapping (no existing memory is
        // affected); its lowest page is made inaccessible; on failure the
        // mapping is released before returning.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(base, Self::GUARD, libc::PROT_NONE) != 0 {
                let err = io::Error::last_os_error();
                libc::munmap(base, Self::LEN);
                return Err(err);
            }
            Ok(Stack { base })
        }
    }

    /// The initial stack pointer: the mapping's end (page-aligned, so
    /// 16-byte aligned as both ABIs want).
    pub(super) fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which is LEN long.
        unsafe { self.base.cast::<u8>().add(Self::LEN).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let kept = SPARE.with(|s| {
            let mut spare = s.borrow_mut();
            let room = spare.len() < Self::POOL;
            if room {
                spare.push(self.base);
            }
            room
        });
        if !kept {
            // SAFETY: `base` is the mapping of LEN bytes made in `new`; its
            // owner drops it only once the child is done with it.
            unsafe {
                libc::munmap(self.base, Self::LEN);
            }
        }
    }
}

/// Once no child is under way: the spare stacks beyond one are
/// unmapped (a burst of starts left up to 64).
pub fn trim_spare_stacks() {
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        while spare.len() > Stack::IDLE_POOL {
            if let Some(base) = spare.pop() {
                // SAFETY: a spare is a mapping of LEN bytes made by
                // `Stack::new` that no child uses any more.
                unsafe {
                    libc::munmap(base, Stack::LEN);
                }
            }
        }
    });
}
