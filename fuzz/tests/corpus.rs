//! Stable-toolchain replay: every file of `corpus/TARGET/` and
//! `regressions/TARGET/` through its target. `cargo test` here checks the
//! committed corpus and every crash found so far without nightly.

use std::path::Path;

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for (name, target) in diakonos_fuzz::TARGETS {
        for kind in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(kind).join(name)) else {
                continue;
            };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).expect("read a corpus file");
                target(&data);
                ran += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(diakonos_fuzz::scratch_dir());
    assert!(ran > 0, "no corpus files found under fuzz/corpus");
}
