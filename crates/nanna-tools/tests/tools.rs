//! The built-in tools, run through the registry as the agent runs them.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use nanna_tools::{Effect, Limits, ToolContext, ToolError, ToolOutput, ToolRegistry};
use serde_json::{Value, json};
use tempfile::TempDir;

fn workspace() -> (TempDir, ToolContext) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(dir.path()).unwrap();
    (dir, ctx)
}

async fn run(ctx: &ToolContext, name: &str, args: Value) -> Result<ToolOutput, ToolError> {
    ToolRegistry::with_builtins().execute(name, args, ctx).await
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------- registry ----------

#[tokio::test]
async fn unknown_tool_lists_the_valid_ones() {
    let (_d, ctx) = workspace();
    let err = run(&ctx, "read", json!({})).await.unwrap_err();
    assert!(matches!(err, ToolError::UnknownTool { .. }));
    let msg = err.to_string();
    assert!(msg.contains("unknown tool `read`"), "{msg}");
    assert!(msg.contains("read_file, write_file, edit_file"), "{msg}");
}

#[tokio::test]
async fn invalid_arguments_are_reported_before_running() {
    let (dir, ctx) = workspace();
    let err = run(
        &ctx,
        "write_file",
        json!({"path": "a.txt", "contents": "x"}),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("invalid arguments for `write_file`"),
        "{msg}"
    );
    assert!(
        msg.contains("unknown argument `contents`; valid arguments: content, path"),
        "{msg}"
    );
    assert!(msg.contains("missing required argument `content`"), "{msg}");
    assert!(!dir.path().join("a.txt").exists(), "the tool must not run");

    let err = run(
        &ctx,
        "shell",
        json!({"command": "true", "timeout_secs": 100000}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("`timeout_secs` must be <= 600"),
        "{err}"
    );
}

#[tokio::test]
async fn numbers_sent_as_strings_are_coerced() {
    let (dir, ctx) = workspace();
    write(dir.path(), "f.txt", "a\nb\nc\nd\n");
    let out = run(
        &ctx,
        "read_file",
        json!({"path": "f.txt", "offset": "2", "limit": "2"}),
    )
    .await
    .unwrap();
    assert!(
        out.content.starts_with("   2\tb\n   3\tc\n"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn effects_and_descriptions() {
    let reg = ToolRegistry::with_builtins();
    let effect = |n: &str| reg.get(n).unwrap().effect();
    assert_eq!(effect("read_file"), Effect::ReadOnly);
    assert_eq!(effect("grep"), Effect::ReadOnly);
    assert_eq!(effect("write_file"), Effect::Write);
    assert_eq!(effect("edit_file"), Effect::Write);
    assert_eq!(effect("shell"), Effect::Exec);
    let describe = |n: &str, a: Value| reg.get(n).unwrap().describe(&a);
    assert_eq!(
        describe(
            "read_file",
            json!({"path": "src/lib.rs", "offset": 1, "limit": 40})
        ),
        "read src/lib.rs:1-40"
    );
    // Described before validation, so hostile numbers must not overflow (it panicked).
    let max = u64::MAX;
    assert_eq!(
        describe(
            "read_file",
            json!({"path": "a", "offset": max, "limit": max})
        ),
        format!("read a:{max}-{max}")
    );
    assert_eq!(
        describe("shell", json!({"command": "cargo test"})),
        "shell cargo test"
    );
    assert_eq!(
        describe("write_file", json!({"path": "a", "content": "x\ny\n"})),
        "write a (2 lines)"
    );
    assert!(reg.get("nope").is_none());
}

#[tokio::test]
async fn registry_caps_oversized_output() {
    use async_trait::async_trait;
    use nanna_model::{JsonSchema, ToolDefinition};
    struct Big(ToolDefinition);
    #[async_trait]
    impl nanna_tools::Tool for Big {
        fn definition(&self) -> &ToolDefinition {
            &self.0
        }
        fn effect(&self) -> Effect {
            Effect::ReadOnly
        }
        fn describe(&self, _: &Value) -> String {
            "big".into()
        }
        async fn execute(&self, _: Value, _: &ToolContext) -> Result<ToolOutput, ToolError> {
            Ok(ToolOutput::new("x".repeat(100_000), "big"))
        }
    }
    let mut reg = ToolRegistry::new();
    reg.register(Box::new(Big(ToolDefinition::function(
        "big",
        "d",
        JsonSchema::object(),
    ))));
    let (_d, ctx) = workspace();
    let ctx = ctx.with_limits(Limits {
        max_output_bytes: 1000,
        ..Limits::default()
    });
    let out = reg.execute("big", Value::Null, &ctx).await.unwrap();
    assert!(out.content.len() <= 1000, "{}", out.content.len());
    assert!(out.content.contains("bytes omitted"), "{}", out.content);
}

// ---------- read_file ----------

#[tokio::test]
async fn read_file_numbers_lines_and_explains_truncation() {
    let (dir, ctx) = workspace();
    let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    write(dir.path(), "src/a.txt", &text);
    let out = run(&ctx, "read_file", json!({"path": "src/a.txt"}))
        .await
        .unwrap();
    assert!(
        out.content.starts_with("   1\tline 1\n   2\tline 2\n"),
        "{}",
        out.content
    );
    assert!(out.content.ends_with("  50\tline 50\n"));
    assert_eq!(out.summary, "read src/a.txt (50 lines)");

    let ctx = ctx.with_limits(Limits {
        max_read_lines: 20,
        ..Limits::default()
    });
    let out = run(&ctx, "read_file", json!({"path": "src/a.txt"}))
        .await
        .unwrap();
    assert!(
        out.content
            .contains("  20\tline 20\n[lines 1-20 of 50; continue with offset=21]"),
        "{}",
        out.content
    );
    let out = run(
        &ctx,
        "read_file",
        json!({"path": "src/a.txt", "offset": 41}),
    )
    .await
    .unwrap();
    assert!(
        out.content.contains("[lines 41-50 of 50; end of file]"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn read_file_errors_are_actionable() {
    let (dir, ctx) = workspace();
    write(dir.path(), "bin.dat", "ab\0cd");
    fs::create_dir(dir.path().join("sub")).unwrap();
    let err = run(&ctx, "read_file", json!({"path": "missing.rs"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("`missing.rs` does not exist"),
        "{err}"
    );
    let err = run(&ctx, "read_file", json!({"path": "sub"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is a directory; use list_dir"),
        "{err}"
    );
    let err = run(&ctx, "read_file", json!({"path": "bin.dat"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("looks like a binary file"),
        "{err}"
    );
    let err = run(&ctx, "read_file", json!({"path": "bin.dat", "offset": 0}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`offset` must be >= 1"), "{err}");
}

// ---------- confinement ----------

#[tokio::test]
async fn file_tools_refuse_paths_outside_the_workspace() {
    let (dir, ctx) = workspace();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "secret");
    symlink(
        outside.path().join("secret.txt"),
        dir.path().join("link.txt"),
    )
    .unwrap();
    symlink(outside.path(), dir.path().join("outdir")).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    symlink(outside.path(), dir.path().join("sub/nested")).unwrap();
    let abs_outside = outside.path().join("secret.txt");
    let abs_outside = abs_outside.to_str().unwrap();

    let cases: Vec<(&str, Value)> = vec![
        ("read_file", json!({"path": "../secret.txt"})),
        ("read_file", json!({"path": abs_outside})),
        ("read_file", json!({"path": "link.txt"})),
        ("read_file", json!({"path": "outdir/secret.txt"})),
        ("read_file", json!({"path": "sub/nested/secret.txt"})),
        ("write_file", json!({"path": "../new.txt", "content": "x"})),
        (
            "write_file",
            json!({"path": "outdir/new.txt", "content": "x"}),
        ),
        (
            "write_file",
            json!({"path": "sub/nested/deep/new.txt", "content": "x"}),
        ),
        ("write_file", json!({"path": "link.txt", "content": "x"})),
        (
            "edit_file",
            json!({"path": "link.txt", "old_text": "secret", "new_text": "x"}),
        ),
        ("list_dir", json!({"path": ".."})),
        ("list_dir", json!({"path": "outdir"})),
        ("glob", json!({"pattern": "*", "path": "/"})),
        ("grep", json!({"pattern": "secret", "path": "outdir"})),
    ];
    for (tool, args) in cases {
        let err = run(&ctx, tool, args.clone()).await.unwrap_err();
        assert!(
            matches!(err, ToolError::PathOutsideWorkspace { .. }),
            "{tool} {args}: {err}"
        );
        assert!(
            err.to_string()
                .contains("use a path relative to the workspace root")
        );
    }
    assert_eq!(
        fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "secret"
    );
    assert_eq!(names_in(outside.path()), vec!["secret.txt"]);

    // An absolute path inside the workspace is fine.
    let inside = ctx.workspace.join("ok.txt");
    run(
        &ctx,
        "write_file",
        json!({"path": inside.to_str().unwrap(), "content": "ok"}),
    )
    .await
    .unwrap();
    assert_eq!(fs::read_to_string(dir.path().join("ok.txt")).unwrap(), "ok");
}

// ---------- write_file ----------

#[tokio::test]
async fn write_file_creates_parents_and_keeps_permissions() {
    let (dir, ctx) = workspace();
    let out = run(
        &ctx,
        "write_file",
        json!({"path": "a/b/run.sh", "content": "#!/bin/sh\necho hi\n"}),
    )
    .await
    .unwrap();
    assert_eq!(out.summary, "write a/b/run.sh (+2)");
    assert!(
        out.content.starts_with("created a/b/run.sh (2 lines"),
        "{}",
        out.content
    );
    let path = dir.path().join("a/b/run.sh");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o750)).unwrap();
    let out = run(
        &ctx,
        "write_file",
        json!({"path": "a/b/run.sh", "content": "new\n"}),
    )
    .await
    .unwrap();
    assert!(out.content.starts_with("overwrote"), "{}", out.content);
    assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o750
    );
    assert_eq!(
        names_in(&dir.path().join("a/b")),
        vec!["run.sh"],
        "no temp files left"
    );
}

/// The file tools write from nanna's process, outside the OS sandbox, so they keep its git
/// rule themselves: in `workspace-write` nothing under a `.git` (nor the git directory a
/// `.git` file names) is written, where git would later run it outside the sandbox (before:
/// `edit_file` planted `core.fsmonitor` in `.git/config` and it ran at `git status`).
#[tokio::test]
async fn file_tools_keep_out_of_git_metadata_in_workspace_write() {
    let (dir, ctx) = workspace();
    let root = dir.path();
    write(root, ".git/config", "[core]\n");
    write(root, ".git/hooks/pre-commit", "#!/bin/sh\n");
    write(root, "sub/.git/HEAD", "ref: refs/heads/main\n");
    let calls = [
        (
            "edit_file",
            json!({"path": ".git/config", "old_text": "[core]", "new_text": "[core]\n\tfsmonitor = x"}),
        ),
        (
            "edit_file",
            json!({"path": ".git/hooks/pre-commit", "old_text": "#!/bin/sh", "new_text": "#!/bin/sh\nx"}),
        ),
        ("write_file", json!({"path": ".git/config", "content": "x"})),
        (
            "write_file",
            json!({"path": ".git/commondir", "content": "../evil"}),
        ),
        (
            "write_file",
            json!({"path": "./sub/../.git/hooks/post-checkout", "content": "x"}),
        ),
        (
            "write_file",
            json!({"path": "sub/.git/config", "content": "x"}),
        ),
        ("write_file", json!({"path": ".git", "content": "x"})),
    ];
    for (tool, args) in calls {
        let err = run(&ctx, tool, args.clone()).await.unwrap_err().to_string();
        assert!(
            err.contains("git's metadata") && err.contains("shell"),
            "{tool} {args}: {err}"
        );
    }
    assert_eq!(
        fs::read_to_string(root.join(".git/config")).unwrap(),
        "[core]\n"
    );
    assert_eq!(
        fs::read_to_string(root.join(".git/hooks/pre-commit")).unwrap(),
        "#!/bin/sh\n"
    );
    assert!(!root.join(".git/commondir").exists());
    assert!(!root.join("sub/.git/config").exists());
    // A worktree: its `.git` file, and the git directory it names inside the workspace.
    let (wt, wt_ctx) = workspace();
    write(wt.path(), ".git", "gitdir: gd\n");
    write(wt.path(), "gd/HEAD", "ref: refs/heads/main\n");
    write(wt.path(), "gd/config", "[core]\n");
    for (path, content) in [(".git", "gitdir: /elsewhere"), ("gd/config", "x")] {
        let args = json!({"path": path, "content": content});
        let err = run(&wt_ctx, "write_file", args).await.unwrap_err();
        assert!(err.to_string().contains("git's metadata"), "{path}: {err}");
    }
    assert_eq!(
        fs::read_to_string(wt.path().join("gd/config")).unwrap(),
        "[core]\n"
    );
    // Names that only look like git's are ordinary files.
    for path in [".gitignore", ".github/workflows/ci.yml", "src/.gitkeep"] {
        run(&ctx, "write_file", json!({"path": path, "content": "x\n"}))
            .await
            .unwrap();
    }
    // `full` confines nothing.
    let full = nanna_sandbox::Sandbox::new(
        nanna_sandbox::Policy::new(nanna_sandbox::SandboxMode::Full),
        root,
    )
    .unwrap();
    let ctx = ToolContext::with_sandbox(std::sync::Arc::new(full));
    run(
        &ctx,
        "write_file",
        json!({"path": ".git/description", "content": "x\n"}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn write_file_onto_a_directory_fails_cleanly() {
    let (dir, ctx) = workspace();
    fs::create_dir(dir.path().join("d")).unwrap();
    let err = run(&ctx, "write_file", json!({"path": "d", "content": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Io { .. }), "{err}");
    assert_eq!(names_in(dir.path()), vec!["d"]);
}

// ---------- edit_file ----------

#[tokio::test]
async fn edit_file_replaces_once_and_reports_a_diff() {
    let (dir, ctx) = workspace();
    write(
        dir.path(),
        "m.rs",
        "fn main() {\n    println!(\"hi\");\n}\n",
    );
    let out = run(
        &ctx,
        "edit_file",
        json!({"path": "m.rs", "old_text": "    println!(\"hi\");", "new_text": "    let x = 1;\n    println!(\"{x}\");"}),
    )
    .await
    .unwrap();
    assert_eq!(out.summary, "edit m.rs (+2 -1)");
    assert!(
        out.content.contains("--- a/m.rs\n+++ b/m.rs\n"),
        "{}",
        out.content
    );
    assert!(
        out.content
            .contains("-    println!(\"hi\");\n+    let x = 1;\n"),
        "{}",
        out.content
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("m.rs")).unwrap(),
        "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n"
    );
    assert_eq!(names_in(dir.path()), vec!["m.rs"]);
}

#[tokio::test]
async fn edit_file_uniqueness_rules() {
    let (dir, ctx) = workspace();
    write(dir.path(), "f.txt", "x = 1\ny = 2\nx = 1\n");
    let err = run(
        &ctx,
        "edit_file",
        json!({"path": "f.txt", "old_text": "x = 1", "new_text": "x = 3"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("occurs 2 times in `f.txt` (lines 1, 3)"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        "x = 1\ny = 2\nx = 1\n"
    );

    let out = run(
        &ctx,
        "edit_file",
        json!({"path": "f.txt", "old_text": "x = 1", "new_text": "x = 3", "replace_all": true}),
    )
    .await
    .unwrap();
    assert_eq!(out.summary, "edit f.txt (+2 -2)");
    assert_eq!(
        fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        "x = 3\ny = 2\nx = 3\n"
    );

    let err = run(
        &ctx,
        "edit_file",
        json!({"path": "f.txt", "old_text": "y = 5", "new_text": "z"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("old_text was not found in `f.txt`. Closest line 2: `y = 2`"),
        "{err}"
    );
    let err = run(
        &ctx,
        "edit_file",
        json!({"path": "nope.txt", "old_text": "a", "new_text": "b"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ToolError::NotFound { .. }), "{err}");
}

// ---------- list_dir, glob, grep and .gitignore ----------

fn project(root: &Path) {
    write(root, ".gitignore", "target/\n*.log\n");
    write(root, "Cargo.toml", "[package]\nname = \"demo\"\n");
    write(root, "src/main.rs", "fn main() {\n    helper();\n}\n");
    write(root, "src/lib.rs", "pub fn helper() {}\n// TODO: more\n");
    write(root, "src/util/mod.rs", "pub fn Helper2() {}\n");
    write(root, "target/debug/out.rs", "fn helper() {}\n");
    write(root, "debug.log", "helper\n");
    write(root, "src/trace.log", "helper\n");
    write(root, ".git/HEAD", "ref: refs/heads/main\n");
    write(root, "docs/notes.md", "helper docs\n");
}

#[tokio::test]
async fn list_dir_respects_gitignore_and_marks_directories() {
    let (dir, ctx) = workspace();
    project(dir.path());
    let out = run(&ctx, "list_dir", json!({})).await.unwrap();
    assert_eq!(out.content, ".gitignore\nCargo.toml\ndocs/\nsrc/");
    assert_eq!(out.summary, "list . (4 entries)");
    let out = run(&ctx, "list_dir", json!({"path": "src"})).await.unwrap();
    assert_eq!(out.content, "lib.rs\nmain.rs\nutil/");
    fs::create_dir(dir.path().join("empty")).unwrap();
    let out = run(&ctx, "list_dir", json!({"path": "empty"}))
        .await
        .unwrap();
    assert_eq!(out.content, "(empty directory)");
    let err = run(&ctx, "list_dir", json!({"path": "Cargo.toml"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("use read_file"), "{err}");
}

#[tokio::test]
async fn glob_matches_names_anywhere_or_anchored_paths() {
    let (dir, ctx) = workspace();
    project(dir.path());
    let out = run(&ctx, "glob", json!({"pattern": "*.rs"})).await.unwrap();
    assert_eq!(out.content, "src/lib.rs\nsrc/main.rs\nsrc/util/mod.rs");
    assert_eq!(out.summary, "glob *.rs (3 files)");
    let out = run(&ctx, "glob", json!({"pattern": "src/*.rs"}))
        .await
        .unwrap();
    assert_eq!(out.content, "src/lib.rs\nsrc/main.rs");
    let out = run(
        &ctx,
        "glob",
        json!({"pattern": "**/*.rs", "path": "src/util"}),
    )
    .await
    .unwrap();
    assert_eq!(out.content, "src/util/mod.rs");
    let out = run(&ctx, "glob", json!({"pattern": "*.log", "path": "src"}))
        .await
        .unwrap();
    assert_eq!(
        out.content, "no files match `*.log` in src",
        "root .gitignore applies below"
    );
    let out = run(&ctx, "glob", json!({"pattern": "*.py"})).await.unwrap();
    assert_eq!(out.content, "no files match `*.py` in .");
    let err = run(&ctx, "glob", json!({"pattern": "src/[a"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid glob `src/[a`"), "{err}");
}

#[tokio::test]
async fn glob_output_is_bounded() {
    let (dir, ctx) = workspace();
    for i in 0..620 {
        write(dir.path(), &format!("many/f{i:04}.txt"), "");
    }
    let out = run(&ctx, "glob", json!({"pattern": "*.txt"}))
        .await
        .unwrap();
    assert_eq!(out.content.lines().count(), 501);
    assert!(out.content.starts_with("many/f0000.txt\n"));
    assert!(
        out.content
            .ends_with("[... 120 more files; narrow the pattern or path]"),
        "{}",
        &out.content[out.content.len() - 80..]
    );
}

#[tokio::test]
async fn grep_finds_lines_respecting_gitignore() {
    let (dir, ctx) = workspace();
    project(dir.path());
    let out = run(&ctx, "grep", json!({"pattern": "helper"}))
        .await
        .unwrap();
    assert_eq!(
        out.content,
        "docs/notes.md:1:helper docs\nsrc/lib.rs:1:pub fn helper() {}\nsrc/main.rs:2:    helper();\n"
    );
    assert_eq!(out.summary, "grep helper (3 matches in 3 files)");
    let out = run(
        &ctx,
        "grep",
        json!({"pattern": "fn helper\\d?", "ignore_case": true, "glob": "*.rs"}),
    )
    .await
    .unwrap();
    assert_eq!(
        out.content,
        "src/lib.rs:1:pub fn helper() {}\nsrc/util/mod.rs:1:pub fn Helper2() {}\n"
    );
    let out = run(
        &ctx,
        "grep",
        json!({"pattern": "TODO", "path": "src/lib.rs"}),
    )
    .await
    .unwrap();
    assert_eq!(out.content, "src/lib.rs:2:// TODO: more\n");
    let out = run(&ctx, "grep", json!({"pattern": "absent"}))
        .await
        .unwrap();
    assert_eq!(out.content, "no matches for `absent` in .");
    let err = run(&ctx, "grep", json!({"pattern": "fn helper("}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");
    assert!(
        err.to_string().contains("escape special characters"),
        "{err}"
    );
}

#[tokio::test]
async fn grep_output_is_bounded() {
    let (dir, ctx) = workspace();
    let text: String = (0..1000).map(|i| format!("match {i}\n")).collect();
    write(dir.path(), "big.txt", &text);
    let out = run(&ctx, "grep", json!({"pattern": "match"}))
        .await
        .unwrap();
    assert_eq!(out.content.lines().count(), 201);
    assert!(
        out.content
            .ends_with("[stopped after 200 matches; narrow the pattern, path or glob]\n")
    );
}

// ---------- shell ----------

#[tokio::test]
async fn shell_reports_output_and_exit_code() {
    let (dir, ctx) = workspace();
    let out = run(
        &ctx,
        "shell",
        json!({"command": "echo out; echo err >&2; pwd; cat; exit 3"}),
    )
    .await
    .unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        out.content,
        format!("out\nerr\n{}\n[exit code 3]", root.display())
    );
    assert_eq!(
        out.summary,
        "shell echo out; echo err >&2; pwd; cat; exit 3 (exit 3)"
    );
    let out = run(&ctx, "shell", json!({"command": "true"}))
        .await
        .unwrap();
    assert_eq!(out.content, "(no output)\n[exit code 0]");
}

#[tokio::test]
async fn shell_caps_output_keeping_head_and_tail() {
    let (_d, ctx) = workspace();
    let ctx = ctx.with_limits(Limits {
        max_output_bytes: 4096,
        ..Limits::default()
    });
    let out = run(&ctx, "shell", json!({"command": "seq 1 100000"}))
        .await
        .unwrap();
    let total: usize = (1..=100_000).map(|i: u32| i.to_string().len() + 1).sum();
    assert!(out.content.starts_with("1\n2\n3\n"));
    assert!(out.content.ends_with("99999\n100000\n[exit code 0]"));
    let start = out.content.find("[... ").unwrap();
    let end = out.content.find(" bytes omitted ...]").unwrap();
    let omitted: usize = out.content[start + 5..end].parse().unwrap();
    let kept = out.content.len()
        - "\n[... ".len()
        - (end - start - 5)
        - " bytes omitted ...]\n".len()
        - "[exit code 0]".len();
    assert_eq!(
        kept + omitted,
        total,
        "the note states exactly what was cut"
    );
    assert!(out.content.len() <= 4096);
}

/// Host pids of processes whose command line contains `marker` (the commands run in their
/// own PID namespace, so `$!` inside is not a host pid).
fn pids_of(marker: &str) -> Vec<i32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Waits up to 5 s for every process of `marker` to be gone; returns those left.
fn wait_gone(marker: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = pids_of(marker);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command whose two background sleeps carry `tag` in their command line, and that
/// writes `bg.pid`/`fg.pid` once both started.
fn tree(tag: u32) -> String {
    format!("sleep 100.{tag}1 & echo $! > bg.pid; sleep 100.{tag}2 & echo $! > fg.pid; wait")
}

#[tokio::test]
async fn shell_timeout_kills_the_whole_process_group() {
    let (dir, ctx) = workspace();
    let started = Instant::now();
    let command = format!("echo started; echo to-stderr >&2; {}", tree(1));
    let err = run(
        &ctx,
        "shell",
        json!({"command": command, "timeout_secs": 1}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ToolError::Timeout { after, output }
            if *after == Duration::from_secs(1) && output == "started\nto-stderr\n"),
        "{err:?}"
    );
    // The model reads the Display text: what happened, the hint, the output, the status.
    let text = err.to_string();
    assert!(
        text.starts_with("timed out after 1s and was killed"),
        "{text}"
    );
    assert!(text.contains("raise timeout_secs"), "{text}");
    assert!(
        text.ends_with(":\nstarted\nto-stderr\n[killed after 1s (timeout)]"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(dir.path().join("fg.pid").exists());
    assert_eq!(
        wait_gone("sleep 100.1"),
        Vec::<i32>::new(),
        "children survived the timeout"
    );
}

#[tokio::test]
async fn shell_timeout_output_is_capped_with_the_cut_stated() {
    let (_d, ctx) = workspace();
    let ctx = ctx.with_limits(Limits {
        max_output_bytes: 4096,
        ..Limits::default()
    });
    let err = run(
        &ctx,
        "shell",
        json!({"command": "seq 1 100000; sleep 100", "timeout_secs": 1}),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ToolError::Timeout { .. }), "{err:?}");
    assert!(text.len() <= 4096, "{}", text.len());
    assert!(text.contains(":\n1\n2\n3\n"), "{text}");
    assert!(text.contains(" bytes omitted ...]"), "{text}");
    assert!(
        text.ends_with("\n99999\n100000\n[killed after 1s (timeout)]"),
        "{text}"
    );
}

#[tokio::test]
async fn shell_timeout_without_output_says_so() {
    let (_d, ctx) = workspace();
    let err = run(
        &ctx,
        "shell",
        json!({"command": "sleep 100", "timeout_secs": 1}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with(":\n(no output)\n[killed after 1s (timeout)]"),
        "{err}"
    );
}

#[tokio::test]
async fn shell_cancellation_kills_the_whole_process_group() {
    let (dir, ctx) = workspace();
    let cancel = ctx.cancel.clone();
    let root = dir.path().to_path_buf();
    tokio::spawn(async move {
        // Cancel once both children have recorded their pids.
        while !(root.join("bg.pid").exists() && root.join("fg.pid").exists()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = run(&ctx, "shell", json!({"command": tree(2)}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Cancelled), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "cancellation did not stop the wait"
    );
    assert_eq!(
        wait_gone("sleep 100.2"),
        Vec::<i32>::new(),
        "children survived cancellation"
    );
}

#[tokio::test]
async fn shell_background_jobs_do_not_outlive_the_command() {
    let (dir, ctx) = workspace();
    let out = run(
        &ctx,
        "shell",
        json!({"command": "sleep 100.31 & setsid sleep 100.32 & (sleep 100.33 &); sleep 0.2; echo started"}),
    )
    .await
    .unwrap();
    assert_eq!(out.content, "started\n[exit code 0]");
    let _ = dir;
    assert_eq!(wait_gone("sleep 100.3"), Vec::<i32>::new());
}

#[tokio::test]
async fn cancelled_context_runs_nothing() {
    let (dir, ctx) = workspace();
    ctx.cancel.cancel();
    let err = run(&ctx, "write_file", json!({"path": "x", "content": "y"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Cancelled));
    assert!(!dir.path().join("x").exists());
}

// ---------- echo, calculate ----------

#[tokio::test]
async fn echo_and_calculate() {
    let (_d, ctx) = workspace();
    let out = run(&ctx, "echo", json!({"text": "héllo"})).await.unwrap();
    assert_eq!(out.content, "héllo");
    let out = run(
        &ctx,
        "calculate",
        json!({"expression": "(2 + 3) * 4 ^ 2 / 8 - sqrt(9)"}),
    )
    .await
    .unwrap();
    assert_eq!(out.content, "7");
    assert_eq!(out.summary, "calculate (2 + 3) * 4 ^ 2 / 8 - sqrt(9) = 7");
    let err = run(&ctx, "calculate", json!({"expression": "1/(2-2)"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot evaluate `1/(2-2)`: division by zero at column 2"
    );
}

#[tokio::test]
async fn validate_checks_without_running() {
    let reg = ToolRegistry::with_builtins();
    assert_eq!(
        reg.validate(
            "read_file",
            json!({"path": "a", "limit": "5", "offset": null})
        )
        .unwrap(),
        json!({"path": "a", "limit": 5})
    );
    let err = reg.validate("read_file", json!({"limit": 5})).unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");
    assert!(matches!(
        reg.validate("nope", json!({})).unwrap_err(),
        ToolError::UnknownTool { .. }
    ));
}

#[tokio::test]
async fn hand_built_context_with_symlinked_root_still_works() {
    let real = tempfile::tempdir().unwrap();
    let links = tempfile::tempdir().unwrap();
    let alias = links.path().join("ws");
    symlink(real.path(), &alias).unwrap();
    write(real.path(), "src/a.rs", "fn a() {}\n");
    let mut ctx = ToolContext::new(real.path()).unwrap();
    ctx.workspace = alias.clone();
    let out = run(&ctx, "read_file", json!({"path": "src/a.rs"}))
        .await
        .unwrap();
    assert_eq!(out.content, "   1\tfn a() {}\n");
    let out = run(&ctx, "glob", json!({"pattern": "*.rs"})).await.unwrap();
    assert_eq!(out.content, "src/a.rs");
    let out = run(&ctx, "grep", json!({"pattern": "fn"})).await.unwrap();
    assert_eq!(out.content, "src/a.rs:1:fn a() {}\n");
    let err = run(&ctx, "read_file", json!({"path": "../x.rs"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ToolError::PathOutsideWorkspace { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn dropping_a_running_shell_call_kills_its_group() {
    let (dir, ctx) = workspace();
    let root = dir.path().to_path_buf();
    let command = tree(4);
    let call = run(&ctx, "shell", json!({"command": command}));
    let pids_written = async {
        while !(root.join("bg.pid").exists() && root.join("fg.pid").exists()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::select! {
        _ = call => panic!("the command should still be running"),
        () = pids_written => {}
    }
    // `call` has been dropped here.
    assert_eq!(
        wait_gone("sleep 100.4"),
        Vec::<i32>::new(),
        "children survived the dropped call"
    );
}
