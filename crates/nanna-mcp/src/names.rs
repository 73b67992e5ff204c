//! The names MCP tools go by in the model's tool list: `SERVER__tool`.
//!
//! OpenAI's chat completions API accepts function names matching `^[a-zA-Z0-9_-]{1,64}$`
//! (its API reference for `tools[].function.name`) and rejects others with HTTP 400. Ollama
//! keeps the name as a plain string (`ToolFunction.Name` in `api/types.go`) and its parsers
//! look for it verbatim in the model's output (`findTool` in `tools/tools.go`), so any
//! name OpenAI accepts works there too. MCP allows more (dots, slashes, up to 128
//! characters), so names are mapped: other characters become `_`, and a name that would
//! pass 64 characters, or that collides with one already taken, is cut and given a short
//! hash of the server's own name so that it stays unique and the same from one session to
//! the next (the prompt cache depends on it).

use std::collections::HashSet;

/// The most characters a tool name may have (OpenAI's limit).
pub const MAX_TOOL_NAME: usize = 64;

/// Separates the server's name from its tool's.
pub const SEPARATOR: &str = "__";

/// Whether `name` is a tool name both providers accept.
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Hands out qualified names, unique within one session.
#[derive(Debug, Default)]
pub struct NameAllocator {
    taken: HashSet<String>,
}

impl NameAllocator {
    /// An allocator that will not hand out any of `reserved` (the built-in tools' names).
    pub fn new<'a>(reserved: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            taken: reserved.into_iter().map(str::to_owned).collect(),
        }
    }

    /// The name the model will call `server`'s tool `tool` by.
    pub fn qualify(&mut self, server: &str, tool: &str) -> String {
        let prefix = format!("{}{SEPARATOR}", sanitize(server));
        let plain = format!("{prefix}{}", sanitize(tool));
        if plain.len() <= MAX_TOOL_NAME && !self.taken.contains(&plain) {
            self.taken.insert(plain.clone());
            return plain;
        }
        // Cut and mark with a hash of the exact server-side names; on the (unlikely)
        // collision of hashes too, salt the hash until free.
        let mut salt = 0u32;
        loop {
            let tag = format!("_{:08x}", fnv1a(server, tool, salt));
            let room = MAX_TOOL_NAME.saturating_sub(prefix.len() + tag.len());
            let body: String = sanitize(tool).chars().take(room).collect();
            let name = format!("{prefix}{body}{tag}");
            if !self.taken.contains(&name) {
                self.taken.insert(name.clone());
                return name;
            }
            salt += 1;
        }
    }
}

/// `text` with every character outside `[a-zA-Z0-9_-]` replaced by `_`.
fn sanitize(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if mapped.is_empty() {
        "_".to_owned()
    } else {
        mapped
    }
}

/// 32-bit FNV-1a of `server`, a zero byte, `tool` and `salt`: stable across builds and
/// platforms, unlike `std`'s hasher.
fn fnv1a(server: &str, tool: &str, salt: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let bytes = server
        .bytes()
        .chain([0])
        .chain(tool.bytes())
        .chain(salt.to_le_bytes());
    for b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_prefixed() {
        let mut names = NameAllocator::new(["read_file"]);
        assert_eq!(names.qualify("fs", "read_file"), "fs__read_file");
        assert_eq!(
            names.qualify("everything", "get-tiny-image"),
            "everything__get-tiny-image"
        );
    }

    #[test]
    fn every_name_fits_both_providers() {
        let mut names = NameAllocator::default();
        let long = "a".repeat(200);
        for (server, tool) in [
            ("fs", "files.read/v2"),
            ("s", long.as_str()),
            ("x", ""),
            ("srv", "名前"),
            (&"s".repeat(48) as &str, "tool"),
        ] {
            let name = names.qualify(server, tool);
            assert!(is_valid_tool_name(&name), "{server}/{tool} -> {name}");
        }
    }

    #[test]
    fn long_and_colliding_names_stay_unique_and_stable() {
        let mut a = NameAllocator::default();
        let long1 = format!("{}1", "t".repeat(80));
        let long2 = format!("{}2", "t".repeat(80));
        let n1 = a.qualify("srv", &long1);
        let n2 = a.qualify("srv", &long2);
        assert_ne!(n1, n2);
        assert_eq!(n1.len(), MAX_TOOL_NAME);
        // "a.b" and "a/b" both sanitize to "a_b".
        let c1 = a.qualify("srv", "a.b");
        let c2 = a.qualify("srv", "a/b");
        assert_eq!(c1, "srv__a_b");
        assert_ne!(c1, c2);
        assert!(c2.starts_with("srv__a_b_"), "{c2}");
        // The same inputs give the same names in another session.
        let mut b = NameAllocator::default();
        assert_eq!(b.qualify("srv", &long1), n1);
        // A built-in's name is never handed out.
        let mut c = NameAllocator::new(["x__y"]);
        assert_ne!(c.qualify("x", "y"), "x__y");
    }
}
