//! Credentials in URLs never reach a message or a log line.
//!
//! A server URL may carry a user and password (`http://user:pw@host:11434`, e.g. an Ollama
//! behind an authenticating proxy). Everything that shows a URL goes through
//! [`redact_url`]; text from elsewhere that may quote one (error chains of libraries) goes
//! through [`redact_urls`].

/// What replaces the user-information part of a URL.
const HIDDEN: &str = "***";

/// `url` with its user information (`user:password@`) replaced by `***@`. Text that is not
/// a URL with credentials comes back unchanged.
pub fn redact_url(url: &str) -> String {
    redact_urls(url)
}

/// `text` with the user information of every `scheme://user:pw@host` in it replaced by
/// `***@`. Any `//` starts an authority, so a URL quoted inside another (`http://ftp://u:p@h`)
/// or without a scheme (`//u:p@h`) is redacted too.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("//") {
        let authority_start = at + 2;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || is_quote(c))
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(HIDDEN);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '`' | '<' | '>' | ')' | ']' | ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_replaced_and_the_rest_kept() {
        assert_eq!(
            redact_url("http://user:s3cret@host:11434/v1"),
            "http://***@host:11434/v1"
        );
        assert_eq!(
            redact_url("https://TOKEN@example.com"),
            "https://***@example.com"
        );
        assert_eq!(
            redact_url("http://localhost:11434"),
            "http://localhost:11434"
        );
        assert_eq!(
            redact_url("http://a:b@c@evil:1/x?y=@z"),
            "http://***@evil:1/x?y=@z",
            "the last @ of the authority ends the user information"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url("http://[::1]:80"), "http://[::1]:80");
    }

    #[test]
    fn every_url_in_a_text_is_redacted() {
        assert_eq!(
            redact_urls(
                "error sending request for url (http://u:p@h:1/api/chat): see `https://x:y@z`, then http://ok"
            ),
            "error sending request for url (http://***@h:1/api/chat): see `https://***@z`, then http://ok"
        );
        assert_eq!(redact_urls("a://b@"), "a://***@");
        assert_eq!(redact_urls("://@"), "://***@");
        assert_eq!(
            redact_urls("write e.g. http://ftp://alice:s3cret@host"),
            "write e.g. http://ftp://***@host"
        );
        assert_eq!(redact_urls("//u:p@h/x"), "//***@h/x");
        assert_eq!(redact_urls("mail bob@example.com"), "mail bob@example.com");
        assert_eq!(redact_urls("ü://ä@ö é"), "ü://***@ö é");
    }
}
