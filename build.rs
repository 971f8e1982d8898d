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
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
