//! A small HTTP/1.1 client over a unix socket or TCP: libpod's API (which bollard does not
//! speak) and health probes of the services through their published ports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address (`host:port`).
    Tcp(String),
}

impl Endpoint {
    /// Parses an engine address (`unix:///path`, `/path`, `tcp://host:port`).
    pub(crate) fn parse(address: &str) -> Option<Self> {
        if let Some(path) = address.strip_prefix("unix://") {
            Some(Self::Unix(PathBuf::from(path)))
        } else if address.starts_with('/') {
            Some(Self::Unix(PathBuf::from(address)))
        } else {
            address
                .strip_prefix("tcp://")
                .or_else(|| address.strip_prefix("http://"))
                .map(|rest| Self::Tcp(rest.trim_end_matches('/').to_string()))
        }
    }

    /// A TCP endpoint for a socket address.
    pub(crate) fn tcp(addr: SocketAddr) -> Self {
        Self::Tcp(addr.to_string())
    }
}

/// A transport-level failure (no HTTP status).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// Connecting failed.
    #[error("cannot connect to {endpoint}: {source}")]
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
    #[error("{endpoint} did not answer within {} ms", .timeout.as_millis())]
    Timeout {
        /// Where.
        endpoint: String,
        /// How long we waited.
        timeout: Duration,
    },
}

fn describe(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Unix(path) => format!("unix://{}", path.display()),
        Endpoint::Tcp(addr) => format!("http://{addr}"),
    }
}

async fn send_on<T>(
    io: T,
    endpoint: &Endpoint,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, HttpError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let exchange = |e: hyper::Error| HttpError::Exchange {
        endpoint: describe(endpoint),
        message: e.to_string(),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(exchange)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await.map_err(exchange)
}

/// Sends one request and returns the response with its body still streaming.
pub(crate) async fn send(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<http::Response<Incoming>, HttpError> {
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
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| HttpError::Exchange {
            endpoint: describe(endpoint),
            message: e.to_string(),
        })?;
    let connect = |source| HttpError::Connect {
        endpoint: describe(endpoint),
        source,
    };
    match endpoint {
        Endpoint::Unix(path) => {
            let io = tokio::net::UnixStream::connect(path)
                .await
                .map_err(connect)?;
            send_on(io, endpoint, request).await
        }
        Endpoint::Tcp(addr) => {
            let io = tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(connect)?;
            send_on(io, endpoint, request).await
        }
    }
}

/// Sends one request and collects the whole answer, within `timeout`.
pub(crate) async fn request(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), HttpError> {
    let exchange = async {
        let response = send(endpoint, method, path, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::Exchange {
                endpoint: describe(endpoint),
                message: e.to_string(),
            })?
            .to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout {
            endpoint: describe(endpoint),
            timeout,
        })?
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
            Endpoint::parse("tcp://10.0.0.1:2375"),
            Some(Endpoint::Tcp("10.0.0.1:2375".into()))
        );
        assert_eq!(Endpoint::parse("ssh://host"), None);
        assert_eq!(encode_query("{\"a\":1}"), "%7B%22a%22%3A1%7D");
    }
}
