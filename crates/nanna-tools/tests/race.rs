//! The file tools against a concurrent swap of a workspace directory for a symlink to the
//! outside (issue 9: before path resolution went through a root handle, 78 of 300 reads and
//! 1 of 300 writes escaped). A bounded number of attempts per tool, zero escapes allowed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nanna_tools::{ToolContext, ToolRegistry};
use serde_json::json;

const ATTEMPTS: usize = 300;

/// Swaps `ws/d` between a real directory and a symlink to `outside` until `stop`.
fn swapper(ws: &Path, outside: &Path, stop: Arc<AtomicBool>, swaps: Arc<AtomicUsize>) {
    let (d, real) = (ws.join("d"), ws.join("d.real"));
    let outside = outside.to_path_buf();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if std::fs::rename(&d, &real).is_ok() {
                let _ = std::os::unix::fs::symlink(&outside, &d);
                std::thread::yield_now();
                let _ = std::fs::remove_file(&d);
                let _ = std::fs::rename(&real, &d);
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_a_directory_for_a_symlink_never_leads_outside() {
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("d")).unwrap();
    std::fs::write(ws.path().join("d/secret"), "inside\n").unwrap();
    std::fs::write(ws.path().join("d/e.txt"), "alpha\n").unwrap();
    std::fs::write(outside.path().join("secret"), "OUTSIDE-SECRET\n").unwrap();
    std::fs::write(outside.path().join("e.txt"), "alpha\n").unwrap();
    std::fs::write(outside.path().join("only-outside"), "OUTSIDE-SECRET\n").unwrap();
    let ctx = ToolContext::new(ws.path()).unwrap();
    let tools = ToolRegistry::coding();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    swapper(ws.path(), outside.path(), stop.clone(), swaps.clone());

    let mut leaks = Vec::new();
    for i in 0..ATTEMPTS {
        let calls = [
            ("read_file", json!({"path": "d/secret"})),
            ("list_dir", json!({"path": "d"})),
            ("grep", json!({"pattern": "SECRET", "path": "d"})),
            ("glob", json!({"pattern": "only-outside"})),
            (
                "write_file",
                json!({"path": "d/w.txt", "content": "pwned\n"}),
            ),
            (
                "edit_file",
                if i % 2 == 0 {
                    json!({"path": "d/e.txt", "old_text": "alpha", "new_text": "beta"})
                } else {
                    json!({"path": "d/e.txt", "old_text": "beta", "new_text": "alpha"})
                },
            ),
        ];
        for (name, args) in calls {
            // Outside content, or an outside name as a listed entry.
            if let Ok(out) = tools.execute(name, args, &ctx).await
                && (out.content.contains("OUTSIDE-SECRET")
                    || out.content.lines().any(|l| l.ends_with("only-outside")))
            {
                leaks.push(format!("{name}: {}", out.content));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        swaps.load(Ordering::Relaxed) > 10,
        "the swapper did not run concurrently"
    );
    assert!(
        leaks.is_empty(),
        "{} reads escaped, e.g. {:?}",
        leaks.len(),
        &leaks[..leaks.len().min(3)]
    );
    let outside_names: Vec<String> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = outside_names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["e.txt", "only-outside", "secret"],
        "writes escaped"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("e.txt")).unwrap(),
        "alpha\n",
        "an edit escaped"
    );
}
