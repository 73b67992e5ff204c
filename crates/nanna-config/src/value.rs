//! The rules of the settings' values, one function each, named in [`Config`](crate::Config)'s
//! `#[serde(...)]` attributes so that a setting's rule sits beside its field. Every message
//! says what is accepted; the loader adds the setting, the value and where it came from.
//!
//! Values from the environment arrive as text: figment's lossy extraction turns `"300"` and
//! `"yes"` into numbers and booleans before these functions see them.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use nanna_model::Think;
use serde::de::{self, Error as _, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// A model server's base URL: absolute http(s) with a host, no query or fragment. Shown in
/// full by `Display` (it is what requests go to), with credentials redacted by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl(Url);

impl ServerUrl {
    /// Checks `text` (see [`nanna_model::parse_server_url`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        nanna_model::parse_server_url(text).map(Self)
    }

    /// The URL itself.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl Deref for ServerUrl {
    type Target = Url;

    fn deref(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&nanna_model::redact_url(self.0.as_str()))
    }
}

impl Serialize for ServerUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for ServerUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| D::Error::custom("expected a URL such as http://localhost:11434"))?;
        Self::parse(&text).map_err(|reason| D::Error::custom(nanna_model::redact_urls(&reason)))
    }
}

/// A secret (an API key): never in `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl Deref for Secret {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Deserializes with `read`, replacing a type error with `expected`.
fn typed<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
    expected: &str,
) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|_| D::Error::custom(expected))
}

/// `model`: a name without spaces, trimmed.
pub(crate) fn model<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    const EXPECTED: &str = "expected a model name without spaces, e.g. `llama3.1:8b`";
    let text: String = typed(d, EXPECTED)?;
    let text = text.trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(D::Error::custom(EXPECTED));
    }
    Ok(text.to_owned())
}

/// `think`: a boolean or a level, in the words of [`Think::ACCEPTED`].
pub(crate) fn think<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Think>, D::Error> {
    typed(d, &format!("expected {}", Think::ACCEPTED))
}

/// `context_window`: at least one token.
pub(crate) fn context_window<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    const EXPECTED: &str = "expected a whole number of tokens, at least 1 (e.g. 32768)";
    match typed(d, EXPECTED)? {
        0 => Err(D::Error::custom(EXPECTED)),
        n => Ok(n),
    }
}

/// `max_tokens`: at least one token when set.
pub(crate) fn max_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    const EXPECTED: &str = "expected a whole number, at least 1 (leave it unset for no cap)";
    match typed(d, EXPECTED)? {
        Some(0) => Err(D::Error::custom(EXPECTED)),
        n => Ok(n),
    }
}

/// `temperature`: 0 to 2 when set (the range both Ollama and OpenAI's API accept).
pub(crate) fn temperature<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
    const EXPECTED: &str = "expected a number from 0 to 2";
    match typed::<Option<f32>, D>(d, EXPECTED)? {
        Some(t) if !(0.0..=2.0).contains(&t) => Err(D::Error::custom(EXPECTED)),
        t => Ok(t),
    }
}

/// `keep_alive`: what Ollama accepts (api/types.go `Duration.UnmarshalJSON`): a number of
/// seconds or a Go duration (`time.ParseDuration`: `30s`, `5m`, `1h30m`, `-1s`), given as
/// text or as a number; kept as text.
pub(crate) fn keep_alive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct KeepAlive;
    impl<'de> Visitor<'de> for KeepAlive {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(KEEP_ALIVE_EXPECTED)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            let text = text.trim();
            if is_keep_alive(text) {
                Ok(Some(text.to_owned()))
            } else {
                Err(E::custom(KEEP_ALIVE_EXPECTED))
            }
        }
    }
    d.deserialize_option(KeepAlive)
}

const KEEP_ALIVE_EXPECTED: &str = "expected a duration such as `30s`, `5m`, `1h30m`, or a \
     number of seconds (`-1` keeps the model loaded)";

/// Whether `text` is a keep-alive Ollama accepts: a number of seconds or a Go duration.
fn is_keep_alive(text: &str) -> bool {
    if text.parse::<f64>().is_ok() {
        return true;
    }
    let body = text.strip_prefix('-').unwrap_or(text);
    if body.is_empty() {
        return false;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len());
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

/// Timeouts (`*_secs`): a whole number of seconds, at least 1.
pub(crate) mod seconds {
    use super::*;

    const EXPECTED: &str = "expected a whole number of seconds, at least 1";

    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_secs())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match typed(d, EXPECTED)? {
            0 => Err(D::Error::custom(EXPECTED)),
            secs => Ok(Duration::from_secs(secs)),
        }
    }
}

/// Size limits (`max_*_bytes`): at least 1 KiB, since smaller limits would cut every real
/// reply.
pub(crate) fn bytes<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    const EXPECTED: &str = "expected a number of bytes, at least 1024";
    let value: u64 = typed(d, EXPECTED)?;
    if value < 1024 {
        return Err(D::Error::custom(EXPECTED));
    }
    T::try_from(value).map_err(|_| D::Error::custom("too large for this machine"))
}

/// `native_tools`: `auto` (ask the server: `None`), `true` or `false`.
pub(crate) mod native_tools {
    use super::*;

    const EXPECTED: &str = "expected `auto` (ask the server), `true` or `false`";

    pub(crate) fn serialize<S: Serializer>(value: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_str("auto"),
            Some(flag) => s.serialize_bool(*flag),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        struct NativeTools;
        impl<'de> Visitor<'de> for NativeTools {
            type Value = Option<bool>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
                Ok(Some(flag))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                match text.trim().to_ascii_lowercase().as_str() {
                    "auto" => Ok(None),
                    "true" | "yes" | "on" | "1" => Ok(Some(true)),
                    "false" | "no" | "off" | "0" => Ok(Some(false)),
                    _ => Err(E::custom(EXPECTED)),
                }
            }
        }
        d.deserialize_any(NativeTools)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_forms() {
        for good in [
            "5m", "1h30m", "-1", "0", "300", "1.5h", "-1s", "250ms", "2µs",
        ] {
            assert!(is_keep_alive(good), "{good}");
        }
        for bad in ["forever", "", "-", "m5", "5 m", "1d"] {
            assert!(!is_keep_alive(bad), "{bad}");
        }
    }
}
