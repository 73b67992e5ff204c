//! `read_file`, `write_file` and `edit_file`.

use async_trait::async_trait;
use nanna_model::{JsonSchema, SchemaType, ToolDefinition};
use serde_json::Value;

use std::io::Read as _;
use std::path::Path;

use cap_std::fs::Dir;

use super::{
    bare, blocking, flag, params, path_for_display, required_str, resolve, resolve_writable,
    uint_arg,
};
use crate::atomic::{self, Written};
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::output::{cut_line, head_tail};
use crate::tool::{Effect, Tool, ToolOutput};
use crate::workspace::{io_error, open_root};

/// Files larger than this are not loaded whole by `read_file` and `edit_file`.
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// Longest line `read_file` shows before cutting it.
const MAX_LINE_BYTES: usize = 2000;

/// Reads a text file with numbered lines.
pub(crate) struct ReadFile {
    def: ToolDefinition,
}

impl ReadFile {
    pub(crate) fn new() -> Self {
        Self {
            def: ToolDefinition::function(
                "read_file",
                "Read a text file, with line numbers.",
                params(vec![
                    ("path", bare(SchemaType::String), true),
                    (
                        "offset",
                        JsonSchema::integer("First line (1-based)").range(Some(1.0), None),
                        false,
                    ),
                    (
                        "limit",
                        JsonSchema::integer("Max lines").range(Some(1.0), None),
                        false,
                    ),
                ]),
            ),
        }
    }
}

#[async_trait]
impl Tool for ReadFile {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value) -> String {
        let path = path_for_display(args);
        match (uint_arg(args, "offset"), uint_arg(args, "limit")) {
            (None, None) => format!("read {path}"),
            (offset, Some(limit)) => {
                let start = offset.unwrap_or(1);
                // The arguments are the model's, not yet validated: no overflow.
                let end = start.saturating_add(limit.saturating_sub(1));
                format!("read {path}:{start}-{end}")
            }
            (Some(start), None) => format!("read {path}:{start}-"),
        }
    }

    async fn execute(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let path = resolve(ctx, required_str(&args, "read_file", "path")?)?;
        let offset = uint_arg(&args, "offset").unwrap_or(1).max(1) as usize;
        let max_lines = ctx.limits.max_read_lines.max(1);
        let limit =
            (uint_arg(&args, "limit").unwrap_or(max_lines as u64) as usize).clamp(1, max_lines);
        let max_bytes = ctx.limits.max_output_bytes;
        let root = super::root(ctx);
        blocking(move || {
            let bytes = load(&open_root(&root)?, &path.rel)?;
            if bytes.iter().take(8192).any(|&b| b == 0) {
                return Err(ToolError::Failed(format!(
                    "`{}` looks like a binary file ({} bytes); it is not shown",
                    path.rel,
                    bytes.len()
                )));
            }
            let text = String::from_utf8_lossy(&bytes);
            number_lines(&text, &path.rel, offset, limit, max_bytes)
        })
        .await
    }
}

/// Reads a whole file beneath `root`, refusing directories and very large files with a hint.
fn load(root: &Dir, rel: &str) -> Result<Vec<u8>, ToolError> {
    let file = root.open(rel).map_err(|e| io_error(rel, &e))?.into_std();
    let meta = file.metadata().map_err(|e| io_error(rel, &e))?;
    if meta.is_dir() {
        return Err(ToolError::Failed(format!(
            "`{rel}` is a directory; use list_dir to see its entries"
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ToolError::Failed(format!(
            "`{rel}` is {} bytes, too large to load; use grep, or shell with head/sed",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // `take` bounds a file that grows while it is read.
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(rel, &e))?;
    Ok(bytes)
}

/// Lines `offset..offset+limit` of `text`, numbered, within `max_bytes`, with a note on how
/// to read more when anything was left out.
fn number_lines(
    text: &str,
    rel: &str,
    offset: usize,
    limit: usize,
    max_bytes: usize,
) -> Result<ToolOutput, ToolError> {
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if total == 0 {
        return Ok(ToolOutput::new(
            "(empty file)",
            format!("read {rel} (empty)"),
        ));
    }
    if offset > total {
        return Err(ToolError::InvalidArguments {
            tool: "read_file".into(),
            detail: format!("offset {offset} is past the end of `{rel}`, which has {total} lines"),
        });
    }
    let end = (offset - 1 + limit).min(total);
    let width = end.to_string().len().max(4);
    let budget = max_bytes.saturating_sub(120);
    let mut out = String::with_capacity(text.len().min(budget) + 64);
    let mut last = offset - 1;
    for (i, line) in lines[offset - 1..end].iter().enumerate() {
        let n = offset + i;
        let line = cut_line(line.strip_suffix('\r').unwrap_or(line), MAX_LINE_BYTES);
        if out.len() + width + line.len() + 2 > budget && n > offset {
            break;
        }
        out.push_str(&format!("{n:>width$}\t{line}\n"));
        last = n;
    }
    let summary = if offset == 1 && last == total {
        format!("read {rel} ({total} lines)")
    } else {
        out.push_str(&format!("[lines {offset}-{last} of {total}; "));
        if last < total {
            out.push_str(&format!("continue with offset={}]\n", last + 1));
        } else {
            out.push_str("end of file]\n");
        }
        format!("read {rel}:{offset}-{last} of {total}")
    };
    Ok(ToolOutput::new(out, summary))
}

/// Creates or overwrites a file atomically.
pub(crate) struct WriteFile {
    def: ToolDefinition,
}

impl WriteFile {
    pub(crate) fn new() -> Self {
        Self {
            def: ToolDefinition::function(
                "write_file",
                "Create or overwrite a file with content. Prefer edit_file for changes.",
                params(vec![
                    ("path", bare(SchemaType::String), true),
                    ("content", bare(SchemaType::String), true),
                ]),
            ),
        }
    }
}

#[async_trait]
impl Tool for WriteFile {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn effect(&self) -> Effect {
        Effect::Write
    }

    fn describe(&self, args: &Value) -> String {
        let lines = super::str_arg(args, "content").map_or(0, count_lines);
        format!("write {} ({lines} lines)", path_for_display(args))
    }

    async fn execute(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let path = resolve_writable(ctx, required_str(&args, "write_file", "path")?)?;
        let content = required_str(&args, "write_file", "content")?.to_owned();
        let root = super::root(ctx);
        blocking(move || {
            let written =
                atomic::write(&open_root(&root)?, Path::new(&path.rel), content.as_bytes())
                    .map_err(|e| io_error(&path.rel, &e))?;
            let lines = count_lines(&content);
            let verb = match written {
                Written::Created => "created",
                Written::Replaced => "overwrote",
            };
            Ok(ToolOutput::new(
                format!(
                    "{verb} {} ({lines} lines, {} bytes)",
                    path.rel,
                    content.len()
                ),
                format!("write {} (+{lines})", path.rel),
            ))
        })
        .await
    }
}

fn count_lines(text: &str) -> usize {
    text.lines().count()
}

/// Replaces exact text in a file and reports the diff.
pub(crate) struct EditFile {
    def: ToolDefinition,
}

impl EditFile {
    pub(crate) fn new() -> Self {
        Self {
            def: ToolDefinition::function(
                "edit_file",
                "Replace exact text in a file. old_text must match once (with its indentation) \
                 unless replace_all.",
                params(vec![
                    ("path", bare(SchemaType::String), true),
                    ("old_text", bare(SchemaType::String), true),
                    ("new_text", bare(SchemaType::String), true),
                    ("replace_all", bare(SchemaType::Boolean), false),
                ]),
            ),
        }
    }
}

#[async_trait]
impl Tool for EditFile {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn effect(&self) -> Effect {
        Effect::Write
    }

    fn describe(&self, args: &Value) -> String {
        format!("edit {}", path_for_display(args))
    }

    async fn execute(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let path = resolve_writable(ctx, required_str(&args, "edit_file", "path")?)?;
        let old = required_str(&args, "edit_file", "old_text")?.to_owned();
        let new = required_str(&args, "edit_file", "new_text")?.to_owned();
        let replace_all = flag(&args, "replace_all");
        let max_bytes = ctx.limits.max_output_bytes;
        let root = super::root(ctx);
        blocking(move || {
            let dir = open_root(&root)?;
            let bytes = load(&dir, &path.rel)?;
            let before = String::from_utf8(bytes).map_err(|_| {
                ToolError::Failed(format!(
                    "`{}` is not UTF-8 text; edit_file cannot change it (use write_file or shell)",
                    path.rel
                ))
            })?;
            let after = replace(&before, &old, &new, replace_all, &path.rel)?;
            atomic::write(&dir, Path::new(&path.rel), after.as_bytes())
                .map_err(|e| io_error(&path.rel, &e))?;
            let (diff, added, removed) = unified_diff(&before, &after, &path.rel);
            let summary = format!("edit {} (+{added} -{removed})", path.rel);
            Ok(ToolOutput::new(
                format!(
                    "{summary}\n{}",
                    head_tail(&diff, max_bytes.saturating_sub(100))
                ),
                summary,
            ))
        })
        .await
    }
}

/// `text` with `old` replaced by `new`, enforcing the uniqueness rule; errors explain how to
/// fix the call.
fn replace(text: &str, old: &str, new: &str, all: bool, rel: &str) -> Result<String, ToolError> {
    let invalid = |detail: String| ToolError::InvalidArguments {
        tool: "edit_file".into(),
        detail,
    };
    if old.is_empty() {
        return Err(invalid(
            "old_text is empty; give the exact text to replace, or use write_file to create a file"
                .into(),
        ));
    }
    if old == new {
        return Err(invalid(
            "old_text and new_text are identical; nothing would change".into(),
        ));
    }
    // Models usually send `\n`; honour files with Windows line endings.
    let crlf = text.contains("\r\n") && !old.contains("\r\n");
    let (old, new) = if crlf {
        (old.replace('\n', "\r\n"), new.replace('\n', "\r\n"))
    } else {
        (old.to_owned(), new.to_owned())
    };
    let positions: Vec<usize> = text.match_indices(&old).map(|(i, _)| i).collect();
    match positions.len() {
        0 => Err(ToolError::Failed(not_found_message(text, &old, rel))),
        1 => Ok(text.replacen(&old, &new, 1)),
        _ if all => Ok(text.replace(&old, &new)),
        n => {
            let lines: Vec<String> = positions
                .iter()
                .take(10)
                .map(|&i| (text[..i].matches('\n').count() + 1).to_string())
                .collect();
            Err(ToolError::Failed(format!(
                "old_text occurs {n} times in `{rel}` (lines {}); include more surrounding lines \
                 to make it unique, or set replace_all=true to change every occurrence",
                lines.join(", ")
            )))
        }
    }
}

/// Explains why `old` was not found: a whitespace-only difference, or the closest line.
fn not_found_message(text: &str, old: &str, rel: &str) -> String {
    let mut msg = format!("old_text was not found in `{rel}`");
    let file_lines: Vec<&str> = text.lines().collect();
    let old_lines: Vec<&str> = old
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .collect();
    let old_lines: Vec<&str> = {
        let mut v = old_lines;
        while v.last().is_some_and(|l| l.is_empty()) {
            v.pop();
        }
        v
    };
    if let Some(first) = old_lines.first() {
        // Same text with different indentation or trailing spaces?
        if let Some(start) = (0..file_lines.len().saturating_sub(old_lines.len() - 1)).find(|&s| {
            old_lines
                .iter()
                .enumerate()
                .all(|(j, l)| file_lines[s + j].trim() == *l)
        }) {
            msg.push_str(&format!(
                ". It matches lines {}-{} if whitespace is ignored: copy the exact indentation \
                 from read_file",
                start + 1,
                start + old_lines.len()
            ));
            return msg;
        }
        // Otherwise point at the line most like the first line of old_text.
        let best = file_lines
            .iter()
            .enumerate()
            .take(20_000)
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i, similarity(l.trim(), first)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, score)) = best
            && score >= 0.5
        {
            msg.push_str(&format!(
                ". Closest line {}: `{}`",
                i + 1,
                cut_line(file_lines[i].trim_end(), 200)
            ));
        }
    }
    msg.push_str(". Read the file and copy old_text exactly");
    msg
}

/// Character-level similarity in 0..=1.
fn similarity(a: &str, b: &str) -> f32 {
    // Cheap bound first: very different lengths cannot be similar.
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la.min(lb) * 2 < la.max(lb) {
        return 0.0;
    }
    similar::TextDiff::from_chars(a, b).ratio()
}

/// A unified diff of `before` → `after` with counts of added and removed lines.
fn unified_diff(before: &str, after: &str, rel: &str) -> (String, usize, usize) {
    let diff = similar::TextDiff::from_lines(before, after);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{rel}"), &format!("b/{rel}"))
        .to_string();
    (text, added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_lines_pads_and_reports_ranges() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let out = number_lines(&text, "f", 1, 100, 10_000).unwrap();
        assert!(out.content.starts_with("   1\tline 1\n"));
        assert!(!out.content.contains("[lines"), "whole file needs no note");
        assert_eq!(out.summary, "read f (30 lines)");
        let out = number_lines(&text, "f", 10, 5, 10_000).unwrap();
        assert!(out.content.starts_with("  10\tline 10\n"));
        assert!(
            out.content
                .contains("  14\tline 14\n[lines 10-14 of 30; continue with offset=15]")
        );
        let err = number_lines(&text, "f", 31, 5, 10_000).unwrap_err();
        assert!(
            err.to_string()
                .contains("past the end of `f`, which has 30 lines")
        );
    }

    #[test]
    fn number_lines_stops_at_byte_budget() {
        let text = "x".repeat(100) + "\n";
        let text = text.repeat(100);
        let out = number_lines(&text, "f", 1, 100, 1000).unwrap();
        assert!(out.content.len() <= 1000, "{}", out.content.len());
        assert!(
            out.content.contains("of 100; continue with offset="),
            "{}",
            out.content
        );
    }

    #[test]
    fn replace_enforces_uniqueness() {
        let text = "a\nfoo\nb\nfoo\n";
        let err = replace(text, "foo", "bar", false, "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("occurs 2 times in `f` (lines 2, 4)"), "{err}");
        assert!(err.contains("replace_all=true"), "{err}");
        assert_eq!(
            replace(text, "foo", "bar", true, "f").unwrap(),
            "a\nbar\nb\nbar\n"
        );
        assert_eq!(
            replace(text, "a\nfoo", "x", false, "f").unwrap(),
            "x\nb\nfoo\n"
        );
    }

    #[test]
    fn replace_explains_missing_text() {
        let text = "fn main() {\n    let total = compute(1, 2);\n}\n";
        let err = replace(text, "let totl = compute(1, 2);\nx", "y", false, "m.rs")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Closest line 2: `    let total = compute(1, 2);`"),
            "{err}"
        );
        let err = replace(
            text,
            "\tlet total = compute(1, 2);\n  }",
            "y",
            false,
            "m.rs",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("matches lines 2-3 if whitespace is ignored"),
            "{err}"
        );
        let err = replace(text, "", "y", false, "m.rs")
            .unwrap_err()
            .to_string();
        assert!(err.contains("old_text is empty"), "{err}");
        let err = replace(text, "main", "main", false, "m.rs")
            .unwrap_err()
            .to_string();
        assert!(err.contains("identical"), "{err}");
    }

    #[test]
    fn replace_handles_crlf_files() {
        let text = "a\r\nb\r\nc\r\n";
        assert_eq!(
            replace(text, "a\nb", "x\ny", false, "f").unwrap(),
            "x\r\ny\r\nc\r\n"
        );
    }

    #[test]
    fn diff_counts_lines() {
        let (diff, added, removed) = unified_diff("a\nb\nc\n", "a\nB\nB2\nc\n", "f.txt");
        assert_eq!((added, removed), (2, 1));
        assert!(diff.contains("--- a/f.txt\n+++ b/f.txt\n@@"), "{diff}");
        assert!(diff.contains("-b\n+B\n+B2\n"), "{diff}");
    }
}
