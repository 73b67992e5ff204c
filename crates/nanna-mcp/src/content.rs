//! An MCP `CallToolResult` as a tool result for the model.
//!
//! The content block kinds and `isError` are the MCP specification's (`CallToolResult`,
//! `ContentBlock` in the schema; rmcp's `model::content`). What the model gets:
//! - text blocks, in order;
//! - an image: a line naming it (type and size) in the text, and the pixels for vision
//!   models ([`ToolOutput::images`]);
//! - audio: a line naming it (no provider takes audio in a tool result);
//! - a resource link: its name, URI, type, size and description;
//! - an embedded resource: its text under its URI, or a line naming binary contents;
//! - `structuredContent`: as JSON text when the server sent no text block (servers that
//!   return both put the same JSON in a text block, as the specification recommends, so it
//!   is not sent twice);
//! - `isError: true`: a failed call ([`ToolError::Failed`]) whose message is the text, so the
//!   model sees `error: ...` and can correct itself, as with a built-in's error.

use nanna_tools::{ToolError, ToolOutput};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// Largest image (decoded) attached for a vision model; a bigger one is only named, so that
/// one screenshot cannot fill every later request.
const MAX_IMAGE_BYTES: u64 = 4 * 1024 * 1024;

/// Maps a result of tool `label` (`server__tool`, for the one-line summary).
pub fn to_output(label: &str, result: CallToolResult) -> Result<ToolOutput, ToolError> {
    let mut parts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut counts = Counts::default();
    let mut has_text = false;
    for block in result.content {
        match block {
            ContentBlock::Text(t) => {
                has_text = true;
                counts.text += 1;
                parts.push(t.text);
            }
            ContentBlock::Image(image) => {
                counts.images += 1;
                let bytes = decoded_len(&image.data);
                if bytes <= MAX_IMAGE_BYTES {
                    parts.push(format!(
                        "[image {}: {}, {}]",
                        counts.images,
                        image.mime_type,
                        size(bytes)
                    ));
                    images.push(image.data);
                } else {
                    parts.push(format!(
                        "[image {}: {}, {}; not attached, larger than {}]",
                        counts.images,
                        image.mime_type,
                        size(bytes),
                        size(MAX_IMAGE_BYTES)
                    ));
                }
            }
            ContentBlock::Audio(audio) => {
                counts.other += 1;
                parts.push(format!(
                    "[audio: {}, {}; not shown, nanna cannot pass audio to the model]",
                    audio.mime_type,
                    size(decoded_len(&audio.data))
                ));
            }
            ContentBlock::ResourceLink(link) => {
                counts.links += 1;
                let mut line = format!("[resource link: {} <{}>", link.name, link.uri);
                if let Some(mime) = &link.mime_type {
                    line.push_str(&format!(", {mime}"));
                }
                if let Some(bytes) = link.size {
                    line.push_str(&format!(", {}", size(bytes)));
                }
                line.push(']');
                if let Some(d) = link.description.as_deref().filter(|d| !d.is_empty()) {
                    line.push_str(&format!(" {d}"));
                }
                parts.push(line);
            }
            ContentBlock::Resource(embedded) => {
                counts.other += 1;
                match embedded.resource {
                    ResourceContents::TextResourceContents { uri, text, .. } => {
                        has_text = true;
                        parts.push(format!("[resource <{uri}>]\n{text}"));
                    }
                    ResourceContents::BlobResourceContents {
                        uri,
                        mime_type,
                        blob,
                        ..
                    } => parts.push(format!(
                        "[resource <{uri}>: {}, {} of binary data; not shown]",
                        mime_type.as_deref().unwrap_or("unknown type"),
                        size(decoded_len(&blob))
                    )),
                    _ => parts.push("[resource of a kind nanna does not know; not shown]".into()),
                }
            }
            _ => {
                counts.other += 1;
                parts.push("[content of a kind nanna does not know; not shown]".into());
            }
        }
    }
    if !has_text && let Some(structured) = result.structured_content {
        parts.insert(0, structured.to_string());
        counts.text += 1;
    }
    let text = parts.join("\n");
    if result.is_error == Some(true) {
        let message = if text.trim().is_empty() {
            format!("`{label}` failed without saying why")
        } else {
            text
        };
        return Err(ToolError::Failed(message));
    }
    let summary = format!("{label}: {}", counts.summary(&text));
    let content = if text.is_empty() {
        "(the tool returned no content)".to_owned()
    } else {
        text
    };
    Ok(ToolOutput::new(content, summary).with_images(images))
}

#[derive(Default)]
struct Counts {
    text: usize,
    images: usize,
    links: usize,
    other: usize,
}

impl Counts {
    fn summary(&self, text: &str) -> String {
        let mut bits = Vec::new();
        if self.text > 0 {
            let lines = text.lines().count();
            bits.push(format!("{lines} line{}", if lines == 1 { "" } else { "s" }));
        }
        for (n, what) in [
            (self.images, "image"),
            (self.links, "resource link"),
            (self.other, "other item"),
        ] {
            if n > 0 {
                bits.push(format!("{n} {what}{}", if n == 1 { "" } else { "s" }));
            }
        }
        if bits.is_empty() {
            "no content".to_owned()
        } else {
            bits.join(", ")
        }
    }
}

/// Bytes a base64 text decodes to (padding and whitespace aside).
fn decoded_len(base64: &str) -> u64 {
    let chars = base64
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .count() as u64;
    chars * 3 / 4
}

fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmbeddedResource, ImageContent};
    use serde_json::json;

    fn result(value: serde_json::Value) -> CallToolResult {
        serde_json::from_value(value).expect("a CallToolResult")
    }

    #[test]
    fn text_images_and_links_become_one_result() {
        // The shape server-everything's get-resource-links and get-tiny-image return.
        let out = to_output(
            "everything__demo",
            result(json!({"content": [
                {"type": "text", "text": "Here it is:"},
                {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
                {"type": "resource_link", "uri": "demo://resource/static/document/1", "name": "Resource 1",
                 "mimeType": "text/plain", "description": "A text resource"}
            ]})),
        )
        .unwrap();
        assert_eq!(
            out.content,
            "Here it is:\n[image 1: image/png, 8 bytes]\n[resource link: Resource 1 \
             <demo://resource/static/document/1>, text/plain] A text resource"
        );
        assert_eq!(out.images, ["iVBORw0KGgo="]);
        assert_eq!(
            out.summary,
            "everything__demo: 3 lines, 1 image, 1 resource link"
        );
    }

    #[test]
    fn is_error_is_a_failed_call_with_the_servers_words() {
        let err = to_output(
            "fs__read_text_file",
            result(json!({"content": [{"type": "text", "text": "Access denied - path outside allowed directories: /etc/passwd not in /tmp/x"}], "isError": true})),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Access denied - path outside allowed directories: /etc/passwd not in /tmp/x"
        );
        let err = to_output("s__t", result(json!({"content": [], "isError": true}))).unwrap_err();
        assert_eq!(err.to_string(), "`s__t` failed without saying why");
    }

    #[test]
    fn structured_content_is_sent_once() {
        let both = to_output(
            "e__weather",
            result(
                json!({"content": [{"type": "text", "text": "{\"temperature\":22.5}"}],
                          "structuredContent": {"temperature": 22.5}}),
            ),
        )
        .unwrap();
        assert_eq!(both.content, "{\"temperature\":22.5}");
        let only = to_output(
            "e__weather",
            result(json!({"content": [], "structuredContent": {"temperature": 22.5}})),
        )
        .unwrap();
        assert_eq!(only.content, "{\"temperature\":22.5}");
    }

    #[test]
    fn embedded_resources_and_empty_results() {
        let mut r = CallToolResult::success(vec![
            ContentBlock::Resource(EmbeddedResource::new(ResourceContents::text(
                "hello",
                "file:///a.txt",
            ))),
            ContentBlock::Resource(EmbeddedResource::new(ResourceContents::blob(
                "AAAA",
                "file:///a.bin",
            ))),
            ContentBlock::Image(ImageContent::new("AAAA", "image/jpeg")),
        ]);
        r.is_error = Some(false);
        let out = to_output("s__t", r).unwrap();
        assert!(
            out.content
                .starts_with("[resource <file:///a.txt>]\nhello\n"),
            "{}",
            out.content
        );
        assert!(
            out.content.contains("unknown type, 3 bytes of binary data"),
            "{}",
            out.content
        );
        let huge = "A".repeat(6 * 1024 * 1024);
        let out = to_output(
            "s__t",
            CallToolResult::success(vec![ContentBlock::Image(ImageContent::new(
                huge,
                "image/png",
            ))]),
        )
        .unwrap();
        assert!(out.images.is_empty());
        assert!(
            out.content.contains("not attached, larger than 4.0 MiB"),
            "{}",
            out.content
        );
        let empty = to_output("s__t", CallToolResult::success(vec![])).unwrap();
        assert_eq!(empty.content, "(the tool returned no content)");
        assert_eq!(empty.summary, "s__t: no content");
    }
}
