//! Entry point of the text tool-call parser's fuzz target in `fuzz/`, replayed over the
//! committed corpus by the ordinary test `tests/fuzz_corpus.rs`. Panics when an invariant
//! breaks.

use crate::textcalls::{TextCallForms, parse_text_tool_calls, strip_calls};

/// The parser on any text, in both modes: spans inside the text on character boundaries
/// and in order; markup-only results are a subset of what every form finds when markup is
/// present; an unreadable call keeps its text; stripping never panics.
pub fn text_calls(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let known = |name: &str| matches!(name, "read_file" | "shell" | "calculate");
    let markup = parse_text_tool_calls(&text, &known, TextCallForms::Markup);
    let any = parse_text_tool_calls(&text, &known, TextCallForms::Any);
    for calls in [&markup, &any] {
        let mut last_start = 0;
        for call in calls {
            assert!(call.span.start <= call.span.end && call.span.end <= text.len());
            assert!(text.is_char_boundary(call.span.start) && text.is_char_boundary(call.span.end));
            assert!(call.span.start >= last_start, "spans out of order");
            last_start = call.span.start;
            if call.problem.is_some() {
                assert!(
                    call.arguments.is_string(),
                    "an unreadable call keeps its text"
                );
            }
        }
        let stripped = strip_calls(&text, calls);
        assert!(stripped.len() <= text.len());
    }
    for call in &markup {
        assert!(text[call.span.clone()].starts_with("<tool_call>"));
    }
    if !markup.is_empty() {
        assert_eq!(markup, any, "markup wins over the other forms");
    }
}
