//! Records when the binary was built: calendar timers do not fire while the
//! clock reads earlier (a box without RTC boots in 1970 until NTP answers).

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // SOURCE_DATE_EPOCH (reproducible builds) wins when set.
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(now);
    println!("cargo:rustc-env=DIAKONOS_BUILD_UNIX={at}");
    println!("cargo:rerun-if-changed=build.rs");
    daemon_first_layout();
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}

/// Static musl builds (the ones shipped to small boxes) put the code the
/// daemon runs first, together, in its own output section (`benches/layout/daemon.ld`,
/// a list of section name patterns; see its header). The kernel maps 64 KiB
/// of file pages around every page a process touches, so daemon code spread
/// over the whole binary made nearly all of it resident in the daemon; packed,
/// the rest (the CLI, importers, backtrace printing) stays out of its RSS.
/// A pattern that matches nothing is harmless, so a stale list only costs
/// memory, never correctness.
fn daemon_first_layout() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    for name in ["daemon.ld", "no-unwind.ld"] {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches")
            .join("layout")
            .join(name);
        println!("cargo:rerun-if-changed={}", script.display());
        if target.contains("linux-musl") && release && script.is_file() {
            println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        }
    }
}
