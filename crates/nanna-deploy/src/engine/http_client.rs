//! The one hand-written HTTP/1.1 client of the crate, over a unix socket or TCP, for what
//! bollard does not do: identifying an engine from `GET /_ping` headers, Podman's libpod API
//! (pods, CDI devices) and health probes of the services through their published ports.
//!
//! Every request runs on a fresh connection whose task ends with the request: a timeout or
//! an answer drops the socket, so a hung peer never holds a descriptor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP authority (`host:port`).
    Tcp(String),
}

impl Endpoint {
    /// Parses an engine address (`unix:///path`, `/path`, `tcp://host:port`,
    /// `http://host:port`); a TCP address without a port gets Docker's 2375.
    pub(crate) fn parse(address: &str) -> Option<Self> {
        if let Some(path) = address.strip_prefix("unix://") {
            Some(Self::Unix(PathBuf::from(path)))
        } else if address.starts_with('/') {
            Some(Self::Unix(PathBuf::from(address)))
        } else {
            address
                .strip_prefix("tcp://")
                .or_else(|| address.strip_prefix("http://"))
                .map(|rest| Self::Tcp(tcp_authority(rest)))
        }
    }

    /// A TCP endpoint for a socket address.
    pub(crate) fn tcp(addr: SocketAddr) -> Self {
        Self::Tcp(addr.to_string())
    }

    /// The endpoint as a URL-like string, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Unix(path) => format!("unix://{}", path.display()),
            Self::Tcp(addr) => format!("http://{addr}"),
        }
    }
}

/// `host:port` from the rest of a `tcp://` address (Docker's port 2375 when none is given).
pub(crate) fn tcp_authority(rest: &str) -> String {
    let authority = rest.split('/').next().unwrap_or(rest);
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:2375")
    }
}

/// A transport-level failure (no HTTP status).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// Connecting failed.
    #[error("cannot connect to {endpoint}: {}", crate::engine::error_chain(.source))]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("HTTP exchange with {endpoint} failed: {message}")]
    Exchange {
        /// Where.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// No answer in time.
    #[error("{endpoint} did not answer within {}", crate::stack::fmt_duration(*.timeout))]
    Timeout {
        /// Where.
        endpoint: String,
        /// How long we waited.
        timeout: Duration,
    },
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// Sends one request on a fresh connection and collects the whole answer, within `timeout`.
pub(crate) async fn request(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, HttpError> {
    let host = match endpoint {
        Endpoint::Unix(_) => "localhost".to_string(),
        Endpoint::Tcp(addr) => addr.clone(),
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host);
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    let exchange_failed = |message: String| HttpError::Exchange {
        endpoint: endpoint.describe(),
        message,
    };
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| exchange_failed(e.to_string()))?;
    let exchange = async {
        let connect = |source| HttpError::Connect {
            endpoint: endpoint.describe(),
            source,
        };
        match endpoint {
            Endpoint::Unix(path) => {
                let io = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect)?;
                exchange_on(io, request).await
            }
            Endpoint::Tcp(addr) => {
                let io = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(connect)?;
                exchange_on(io, request).await
            }
        }
        .map_err(|e| exchange_failed(crate::engine::error_chain(&e)))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout {
            endpoint: endpoint.describe(),
            timeout,
        })?
}

async fn exchange_on<T>(io: T, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // The connection is driven here, not in a spawned task, so that dropping this future
    // (timeout) drops the socket too.
    let mut connection = std::pin::pin!(connection);
    let exchange = async {
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, hyper::Error>(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        biased;
        answer = &mut exchange => answer,
        closed = &mut connection => match closed {
            // The peer may close (`Connection: close`) right after the answer: finish reading.
            Ok(()) => exchange.await,
            Err(error) => Err(error),
        },
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_addresses() {
        assert_eq!(
            Endpoint::parse("unix:///run/podman/podman.sock"),
            Some(Endpoint::Unix("/run/podman/podman.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.1:2376"),
            Some(Endpoint::Tcp("10.0.0.1:2376".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://engine.local/"),
            Some(Endpoint::Tcp("engine.local:2375".into()))
        );
        assert_eq!(Endpoint::parse("ssh://host"), None);
        assert_eq!(encode_query("{\"a\":1}"), "%7B%22a%22%3A1%7D");
    }

    #[test]
    fn tcp_addresses_get_a_port() {
        assert_eq!(tcp_authority("127.0.0.1:2376"), "127.0.0.1:2376");
        assert_eq!(tcp_authority("engine.local/"), "engine.local:2375");
        assert_eq!(tcp_authority("[::1]:2376/x"), "[::1]:2376");
        assert_eq!(tcp_authority("[::1]"), "[::1]:2375");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_missing_socket_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let endpoint = Endpoint::Unix(path);
        let error = request(
            &endpoint,
            Method::GET,
            "/_ping",
            None,
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, HttpError::Timeout { .. }), "{error}");
        assert!(error.to_string().contains("100 ms"), "{error}");
        let gone = Endpoint::Unix(dir.path().join("gone.sock"));
        let error = request(&gone, Method::GET, "/_ping", None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Connect { .. }), "{error}");
    }
}
