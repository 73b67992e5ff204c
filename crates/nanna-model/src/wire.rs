//! Wire-level rules both providers share: which tools a request offers, the client-side
//! check of `tool_choice`, image encodings, and Ollama's model-name normalisation.

use crate::provider::{ModelError, Result};
use crate::types::{ChatRequest, ToolChoice, ToolDefinition};

/// The tools to put in a request for a server that ignores `tool_choice` (Ollama, native and
/// `/v1`: `api.ChatRequest` and `openai.ChatCompletionRequest` have no such field): `none`
/// offers no tool and a specific choice offers only that tool, so the model cannot call
/// another one.
pub(crate) fn offered_tools(request: &ChatRequest) -> Vec<&ToolDefinition> {
    match &request.tool_choice {
        ToolChoice::None => Vec::new(),
        ToolChoice::Specific(name) => request.tools.iter().filter(|t| t.name() == name).collect(),
        ToolChoice::Auto | ToolChoice::Required => request.tools.iter().collect(),
    }
}

/// Checks a finished reply against the request's `tool_choice`, for servers that do not
/// enforce it: `required` needs a call, a specific tool needs calls to that tool only,
/// `none` needs no call.
#[derive(Debug, Clone)]
pub(crate) struct ChoiceCheck {
    model: String,
    choice: ToolChoice,
}

impl ChoiceCheck {
    pub(crate) fn new(request: &ChatRequest) -> Self {
        Self {
            model: request.model.clone(),
            choice: if request.tools.is_empty() {
                ToolChoice::Auto
            } else {
                request.tool_choice.clone()
            },
        }
    }

    /// `calls`: the names of the tools the reply called, in order.
    pub(crate) fn check(&self, calls: &[String]) -> Result<()> {
        let detail = match &self.choice {
            ToolChoice::Auto => None,
            ToolChoice::None if !calls.is_empty() => Some(format!(
                "it called `{}` although the request allowed no tool call (tool_choice none)",
                calls.join("`, `")
            )),
            ToolChoice::None => None,
            ToolChoice::Required if calls.is_empty() => {
                Some("it answered without calling a tool (tool_choice required)".to_owned())
            }
            ToolChoice::Required => None,
            ToolChoice::Specific(name) if calls.is_empty() => Some(format!(
                "it answered without calling `{name}`, the tool the request required"
            )),
            ToolChoice::Specific(name) => calls
                .iter()
                .find(|c| *c != name)
                .map(|other| format!("it called `{other}` although the request required `{name}`")),
        };
        match detail {
            Some(detail) => Err(ModelError::ToolChoiceIgnored {
                model: self.model.clone(),
                detail,
            }),
            None => Ok(()),
        }
    }
}

/// The bare base64 of an image given as base64 or as a `data:<type>;base64,` URL (Ollama's
/// native API decodes `images` as Go `[]byte`, i.e. plain standard base64).
pub(crate) fn bare_base64(image: &str) -> &str {
    match image.strip_prefix("data:") {
        Some(rest) => match rest.split_once(',') {
            Some((meta, data)) if meta.ends_with(";base64") => data,
            _ => image,
        },
        None => image,
    }
}

/// An image as a `data:` URL for OpenAI-style `image_url` parts. Bare base64 gets its media
/// type from the image's first bytes: Ollama's `/v1` accepts only jpeg, png and webp (or a
/// blank type) and answers "invalid image input" to anything else (openai/openai.go
/// `decodeImageURL`).
pub(crate) fn data_url(image: &str) -> String {
    if image.starts_with("data:") {
        return image.to_owned();
    }
    let media = if image.starts_with("iVBORw0KGgo") {
        "image/png"
    } else if image.starts_with("/9j/") {
        "image/jpeg"
    } else if image.starts_with("UklGR") {
        "image/webp"
    } else if image.starts_with("R0lGOD") {
        "image/gif"
    } else {
        ""
    };
    format!("data:{media};base64,{image}")
}

/// The name under which Ollama stores `name`, for comparing names: Ollama fills in the tag
/// `latest`, the namespace `library` and the host `registry.ollama.ai`, then shows the
/// shortest form and compares case-insensitively (types/model/name.go `ParseName`,
/// `DisplayShortest`; server/routes.go `getExistingName`). `llama3.1` and
/// `registry.ollama.ai/library/Llama3.1:latest` are both `llama3.1:latest`.
pub(crate) fn ollama_model_name(name: &str) -> String {
    let name = name.trim();
    // "/" cannot appear in a tag, so a ":" after the last "/" starts the tag.
    let (rest, tag) = match (name.rfind(':'), name.rfind('/')) {
        (Some(colon), slash) if slash.is_none_or(|slash| colon > slash) => {
            (&name[..colon], &name[colon + 1..])
        }
        _ => (name, ""),
    };
    let tag = if tag.is_empty() { "latest" } else { tag };
    let mut parts = rest.rsplitn(3, '/');
    let model = parts.next().unwrap_or_default();
    let namespace = parts.next().unwrap_or("library");
    let host = parts.next().unwrap_or("registry.ollama.ai");
    let host = host.split_once("://").map_or(host, |(_, host)| host);
    let mut out = String::new();
    if !host.eq_ignore_ascii_case("registry.ollama.ai") {
        out.push_str(host);
        out.push('/');
        out.push_str(namespace);
        out.push('/');
    } else if !namespace.eq_ignore_ascii_case("library") {
        out.push_str(namespace);
        out.push('/');
    }
    out.push_str(model);
    out.push(':');
    out.push_str(tag);
    out.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChatMessage;

    #[test]
    fn ollama_names_normalise_like_parse_name_and_display_shortest() {
        for (given, stored) in [
            ("llama3.1", "llama3.1:latest"),
            ("llama3.1:latest", "llama3.1:latest"),
            ("Llama3.1:8B", "llama3.1:8b"),
            ("library/llama3.1", "llama3.1:latest"),
            ("registry.ollama.ai/library/llama3.1:8b", "llama3.1:8b"),
            ("https://registry.ollama.ai/library/qwen3", "qwen3:latest"),
            ("jmorgan/mistral", "jmorgan/mistral:latest"),
            (
                "hf.co/bartowski/Qwen3-8B-GGUF:Q4_K_M",
                "hf.co/bartowski/qwen3-8b-gguf:q4_k_m",
            ),
            ("localhost:5000/ns/m", "localhost:5000/ns/m:latest"),
        ] {
            assert_eq!(ollama_model_name(given), stored, "{given}");
        }
    }

    #[test]
    fn images_convert_between_data_urls_and_bare_base64() {
        assert_eq!(bare_base64("data:image/png;base64,iVBOR"), "iVBOR");
        assert_eq!(bare_base64("iVBOR"), "iVBOR");
        assert_eq!(
            bare_base64("data:image/svg+xml,<svg/>"),
            "data:image/svg+xml,<svg/>"
        );
        assert_eq!(
            data_url("iVBORw0KGgoAAA"),
            "data:image/png;base64,iVBORw0KGgoAAA"
        );
        assert_eq!(data_url("/9j/4AAQ"), "data:image/jpeg;base64,/9j/4AAQ");
        assert_eq!(data_url("AAAA"), "data:;base64,AAAA");
        assert_eq!(
            data_url("data:image/webp;base64,x"),
            "data:image/webp;base64,x"
        );
    }

    #[test]
    fn tool_choice_is_checked_on_the_reply() {
        let request = |choice| {
            ChatRequest::new("m", vec![ChatMessage::user("hi")])
                .with_tools(vec![ToolDefinition::function(
                    "read_file",
                    "r",
                    crate::types::JsonSchema::object(),
                )])
                .with_tool_choice(choice)
        };
        let calls = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let required = ChoiceCheck::new(&request(ToolChoice::Required));
        assert!(required.check(&calls(&["read_file"])).is_ok());
        let error = required.check(&[]).expect_err("no call");
        assert!(error.to_string().contains("required"), "{error}");
        let specific = ChoiceCheck::new(&request(ToolChoice::Specific("read_file".into())));
        assert!(specific.check(&calls(&["read_file"])).is_ok());
        assert!(specific.check(&calls(&["grep"])).is_err());
        assert!(specific.check(&[]).is_err());
        let none = ChoiceCheck::new(&request(ToolChoice::None));
        assert!(none.check(&[]).is_ok());
        assert!(none.check(&calls(&["read_file"])).is_err());
        assert!(
            ChoiceCheck::new(&request(ToolChoice::Auto))
                .check(&[])
                .is_ok()
        );
    }
}
