//! The allocator of client processes: a bump arena, with the system
//! allocator behind it.
//!
//! A client command is a process that lives a millisecond and allocates a
//! few kilobytes. musl's allocator maps a page for each new size class and
//! unmaps it when its last block is freed (`list` made four `mmap`s, one
//! `munmap` and two `brk`s, and took a page fault on each page): about a
//! tenth of a `diakonos list` here (benches/README.md, fourteenth
//! session). The arena hands out bytes of one static block in order and
//! never reuses them; its pages are touched in order, and untouched ones
//! cost nothing (`.bss`). A block that grows at the arena's end grows in
//! place (a `String` being written). Once the arena is full, or for the
//! daemon (a process of months, which must reuse what it frees:
//! [`Arena::disable`] before its first allocation), every allocation goes
//! to the system allocator, and so does the freeing of what it gave.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `N` bytes handed out in order; see the module's documentation.
#[repr(C, align(4096))]
pub struct Arena<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    /// Offset of the first byte not handed out.
    next: AtomicUsize,
    /// Set by [`Arena::disable`]: the system allocator only. (False at
    /// first, so the whole arena is zeros and sits in `.bss`, not in the
    /// file.)
    off: AtomicBool,
}

// SAFETY: `bytes` is only reached through pointers handed out by `alloc`,
// each range at most once (`next` only grows, by compare-exchange, and an
// in-place growth takes the range from the old end by compare-exchange
// too), so no two owners, on any threads, share a byte.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Arena {
            bytes: UnsafeCell::new([0; N]),
            next: AtomicUsize::new(0),
            off: AtomicBool::new(false),
        }
    }

    /// From now on, allocations go to the system allocator.
    pub fn disable(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    fn holds(&self, ptr: *mut u8) -> bool {
        (self.base()..self.base() + N).contains(&(ptr as usize))
    }

    /// Takes `layout` from the arena, or None when it does not fit.
    fn take(&self, layout: Layout) -> Option<*mut u8> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let base = self.base();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + next).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size()).filter(|&end| end <= N)?;
            match self
                .next
                .compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(self.bytes.get().cast::<u8>().wrapping_add(start)),
                Err(seen) => next = seen,
            }
        }
    }

    /// Grows or shrinks the block at `ptr` (of `old` bytes) to `new` bytes
    /// where it is, when it is the last one handed out and `new` fits.
    fn resize_in_place(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        let start = ptr as usize - self.base();
        let Some(end) = start.checked_add(new).filter(|&end| end <= N) else {
            return false;
        };
        self.next
            .compare_exchange(start + old, end, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

// Not inlined: each of these, copied into every place that allocates (LTO
// does so), made the binary 39 KiB larger.
//
// SAFETY: every block handed out is `layout.size()` bytes aligned to
// `layout.align()`, inside the arena (checked against `N`) or from the
// system allocator; blocks of the arena are never handed out twice (see
// `Sync`), and those of the system allocator go back to it only.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.take(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.holds(ptr) {
            // SAFETY: not the arena's, so the system allocator's, with the
            // layout it was allocated with (the caller's promise).
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.holds(ptr) {
            // SAFETY: the system allocator's block, as in `dealloc`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if self.resize_in_place(ptr, layout.size(), new_size) {
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the
        // caller's promise for `realloc`).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a nonzero size, as the caller promises.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not
            // overlap (the new one was never handed out before).
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("a valid layout")
    }

    #[test]
    fn blocks_come_in_order_aligned_and_never_overlap() {
        let arena = Box::new(Arena::<256>::new());
        // SAFETY (for the test's calls): layouts of nonzero size; every
        // block is freed with the layout it was allocated with.
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(8, 8));
            assert!(arena.holds(a) && arena.holds(b));
            assert_eq!(b as usize % 8, 0, "aligned");
            assert!(b as usize >= a as usize + 3, "after the first block");
            arena.dealloc(a, layout(3, 1));
            let c = arena.alloc(layout(1, 1));
            assert!(c as usize >= b as usize + 8, "freed bytes are not reused");
        }
    }

    #[test]
    fn the_last_block_grows_in_place_and_others_move() {
        let arena = Box::new(Arena::<256>::new());
        // SAFETY: as above; `realloc` gets the block's current layout.
        unsafe {
            let a = arena.alloc(layout(4, 1));
            a.copy_from(b"abcd".as_ptr(), 4);
            let grown = arena.realloc(a, layout(4, 1), 16);
            assert_eq!(grown, a, "the last block grows where it is");
            let b = arena.alloc(layout(4, 1));
            let moved = arena.realloc(a, layout(16, 1), 32);
            assert_ne!(moved, a, "a block with another after it moves");
            assert!(moved as usize >= b as usize + 4);
            assert_eq!(
                std::slice::from_raw_parts(moved, 4),
                b"abcd",
                "its bytes move with it"
            );
        }
    }

    #[test]
    fn past_its_end_or_disabled_it_hands_over_to_the_system_allocator() {
        let arena = Box::new(Arena::<64>::new());
        // SAFETY: as above.
        unsafe {
            let a = arena.alloc(layout(48, 1));
            assert!(arena.holds(a));
            a.write(7);
            let big = arena.alloc(layout(32, 1));
            assert!(
                !big.is_null() && !arena.holds(big),
                "too large: the system's"
            );
            let regrown = arena.realloc(a, layout(48, 1), 128);
            assert!(
                !arena.holds(regrown),
                "grown past the end: moved to the system's"
            );
            assert_eq!(*regrown, 7, "its bytes move with it");
            arena.dealloc(regrown, layout(128, 1));
            arena.dealloc(big, layout(32, 1));
            arena.disable();
            let c = arena.alloc(layout(1, 1));
            assert!(!arena.holds(c), "disabled: the system's");
            arena.dealloc(c, layout(1, 1));
        }
    }
}
