//! `memcpy` and `memmove` for the static musl build on x86_64.
//!
//! musl's own (`src/string/x86_64/memcpy.s`) copies everything with `rep
//! movsq`, whose start-up costs tens of cycles however few bytes move.
//! Rust copies small things constantly (a `String` pushed into a buffer,
//! a field decoded off the wire): in `diakonos list` of 1000 units a third
//! of the client's time was spent starting `rep movsq` (benches/README.md).
//! These copy up to 32 bytes with two overlapping loads and two stores,
//! up to 256 bytes 16 at a time, and leave longer copies to `rep movsb`
//! (fast on every CPU with ERMSB). They are always assembled, as
//! `diakonos_memcpy` and `diakonos_memmove`, so the unit tests below run
//! them on every x86_64 build; only a musl build also names them `memcpy`
//! and `memmove`, which keeps libc.a's from being linked (its `memmove`
//! needs its `memcpy`: both go together). Plain assembly, not Rust: the
//! compiler turns a copy loop back into a call of `memcpy`.

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    // Its own section, so the layout script can place it (hot in both
    // the daemon and the client). Local labels avoid the digits 0 and 1
    // alone: in Intel syntax LLVM may read `10b` as a binary number.
    ".pushsection .text.diakonos_mem,\"ax\",@progbits",
    ".p2align 4",
    ".globl diakonos_memcpy",
    ".type diakonos_memcpy,@function",
    // rdi = destination, rsi = source, rdx = length; returns rax = rdi.
    "diakonos_memcpy:",
    "mov rax, rdi",
    "cmp rdx, 32",
    "ja 42f",
    // Up to 32 bytes: every load before any store, so these paths are
    // also right for overlapping memmoves.
    "22:",
    "cmp edx, 16",
    "jb 23f",
    "movups xmm0, [rsi]",
    "movups xmm1, [rsi + rdx - 16]",
    "movups [rdi], xmm0",
    "movups [rdi + rdx - 16], xmm1",
    "ret",
    "23:",
    "cmp edx, 8",
    "jb 24f",
    "mov rcx, [rsi]",
    "mov r8, [rsi + rdx - 8]",
    "mov [rdi], rcx",
    "mov [rdi + rdx - 8], r8",
    "ret",
    "24:",
    "cmp edx, 4",
    "jb 25f",
    "mov ecx, [rsi]",
    "mov r8d, [rsi + rdx - 4]",
    "mov [rdi], ecx",
    "mov [rdi + rdx - 4], r8d",
    "ret",
    "25:",
    "cmp edx, 2",
    "jb 26f",
    "movzx ecx, word ptr [rsi]",
    "movzx r8d, word ptr [rsi + rdx - 2]",
    "mov [rdi], cx",
    "mov [rdi + rdx - 2], r8w",
    "ret",
    "26:",
    "test edx, edx",
    "jz 27f",
    "movzx ecx, byte ptr [rsi]",
    "mov [rdi], cl",
    "27:",
    "ret",
    // More than 32 bytes, copied forwards (also right for a memmove to a
    // lower address).
    "42:",
    "cmp rdx, 256",
    "ja 45f",
    // The last 16 bytes are loaded first and stored last.
    "movups xmm1, [rsi + rdx - 16]",
    "lea rcx, [rdx - 16]",
    "xor r8d, r8d",
    "43:",
    "movups xmm0, [rsi + r8]",
    "movups [rdi + r8], xmm0",
    "add r8, 16",
    "cmp r8, rcx",
    "jb 43b",
    "movups [rdi + rdx - 16], xmm1",
    "ret",
    "45:",
    "mov rcx, rdx",
    "rep movsb",
    "ret",
    ".size diakonos_memcpy, . - diakonos_memcpy",
    "",
    ".p2align 4",
    ".globl diakonos_memmove",
    ".type diakonos_memmove,@function",
    "diakonos_memmove:",
    "mov rax, rdi",
    "cmp rdx, 32",
    "jbe 22b",
    // dest - src, unsigned: at least the length when a forward copy is
    // right (the destination is below the source, or they do not overlap).
    "mov rcx, rdi",
    "sub rcx, rsi",
    "cmp rcx, rdx",
    "jae 42b",
    // The destination overlaps the source from above: 16 bytes at a time
    // from the end, the first 16 loaded first and stored last.
    "movups xmm1, [rsi]",
    "mov r8, rdx",
    "52:",
    "sub r8, 16",
    "movups xmm0, [rsi + r8]",
    "movups [rdi + r8], xmm0",
    "cmp r8, 16",
    "ja 52b",
    "movups [rdi], xmm1",
    "ret",
    ".size diakonos_memmove, . - diakonos_memmove",
    ".popsection",
);

// The musl build's `memcpy` and `memmove` are the two above.
#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
std::arch::global_asm!(
    ".globl memcpy",
    ".type memcpy,@function",
    ".set memcpy, diakonos_memcpy",
    ".globl memmove",
    ".type memmove,@function",
    ".set memmove, diakonos_memmove",
);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    extern "C" {
        fn diakonos_memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn diakonos_memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
    }

    /// In the musl build, `memcpy` and `memmove` are these two (libc.a's
    /// were not linked): every copy of the tests in this build runs them.
    #[cfg(target_env = "musl")]
    #[test]
    fn the_musl_build_copies_with_these() {
        extern "C" {
            fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
            fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
        }
        assert_eq!(
            memcpy as *const () as usize,
            diakonos_memcpy as *const () as usize
        );
        assert_eq!(
            memmove as *const () as usize,
            diakonos_memmove as *const () as usize
        );
    }

    /// Every length up to 600 (each path and its edges), at every
    /// alignment of source and destination within 16 bytes; the bytes
    /// around the destination must stay untouched.
    #[test]
    fn memcpy_copies_every_length_and_alignment_and_nothing_more() {
        let src: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..600 {
            for s_off in 0..16 {
                for d_off in [0, 1, 7, 8, 13, 15] {
                    let mut dst = vec![0xAAu8; 700];
                    // SAFETY: both ranges are inside their vectors and do
                    // not overlap (two allocations).
                    let ret = unsafe {
                        diakonos_memcpy(
                            dst.as_mut_ptr().add(d_off + 16),
                            src.as_ptr().add(s_off),
                            n,
                        )
                    };
                    assert_eq!(ret, dst.as_mut_ptr().wrapping_add(d_off + 16), "n {n}");
                    assert_eq!(
                        &dst[d_off + 16..d_off + 16 + n],
                        &src[s_off..s_off + n],
                        "n {n}"
                    );
                    assert!(
                        dst[..d_off + 16].iter().all(|&b| b == 0xAA),
                        "before, n {n}"
                    );
                    assert!(
                        dst[d_off + 16 + n..].iter().all(|&b| b == 0xAA),
                        "after, n {n}"
                    );
                }
            }
        }
    }

    /// Long copies (`rep movsb`), forwards and backwards over themselves.
    #[test]
    fn long_copies_and_moves_are_right() {
        let original: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 8)) as u8).collect();
        for n in [4095, 4096, 65_537, 200_000] {
            let mut dst = vec![0u8; n + 3];
            // SAFETY: n bytes from offset 1 of `original` (long enough) into
            // offset 3 of `dst` (n + 3 long); two allocations.
            unsafe { diakonos_memcpy(dst.as_mut_ptr().add(3), original.as_ptr().add(1), n) };
            assert!(dst[3..] == original[1..n + 1], "memcpy {n}");
            for (from, to) in [(0, 5), (5, 0), (0, 4096), (4096, 0)] {
                let mut buf = original.clone();
                let mut expect = original.clone();
                expect[to..to + n].copy_from_slice(&original[from..from + n]);
                let base = buf.as_mut_ptr();
                // SAFETY: both ranges lie inside `buf` (n + 4096 < 300 000).
                unsafe { diakonos_memmove(base.add(to), base.add(from), n) };
                assert!(buf == expect, "memmove {n} from {from} to {to}");
            }
        }
    }

    /// memmove within one buffer, both directions, every distance up to
    /// 40 and some far ones, against a copy made through a second buffer.
    #[test]
    fn memmove_is_right_for_every_overlap() {
        let original: Vec<u8> = (0..1200u32).map(|i| (i * 13 + 5) as u8).collect();
        let lengths = (0..300).chain([511, 512, 513, 1000]);
        for n in lengths {
            for dist in (0..40).chain([64, 100, 255, 256, 257]) {
                for (from, to) in [(100, 100 + dist), (100 + dist, 100)] {
                    if from + n > original.len() || to + n > original.len() {
                        continue;
                    }
                    let mut buf = original.clone();
                    let mut expect = original.clone();
                    expect[to..to + n].copy_from_slice(&original[from..from + n]);
                    let base = buf.as_mut_ptr();
                    // SAFETY: both ranges are inside `buf` (checked above);
                    // memmove allows them to overlap.
                    let ret = unsafe { diakonos_memmove(base.add(to), base.add(from), n) };
                    assert_eq!(ret, base.wrapping_add(to));
                    assert!(buf == expect, "n {n} from {from} to {to}");
                }
            }
        }
    }
}
