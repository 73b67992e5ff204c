//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets'
//! own entry points, on stable Rust: every input the fuzzer kept (and every crash it ever
//! found, once fixed) stays a test.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            panic!("{} fails: {panic:?}", path.display());
        }
        inputs += 1;
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
}

#[test]
fn tool_args_corpus() {
    replay("tool_args", nanna_tools::fuzzing::validate);
}

#[test]
fn calculate_corpus() {
    replay("calculate", nanna_tools::fuzzing::calculate);
}
