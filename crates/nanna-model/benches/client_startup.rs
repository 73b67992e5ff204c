//! Cost of building the HTTP client, which sits on the CLI's path to its first request.
//!
//! Run with `cargo bench -p nanna-model --bench client_startup`. Compares reqwest's default
//! client (rustls with the platform verifier: it reads and parses the system's root
//! certificates on every build) with the client the providers build for plain-HTTP servers
//! (no root certificates loaded), and times a provider's construction and first request.

use std::time::{Duration, Instant};

use nanna_model::{ModelProvider, OllamaProvider};

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn average(runs: u32, mut f: impl FnMut()) -> Duration {
    let (_, total) = time(|| {
        for _ in 0..runs {
            f();
        }
    });
    total / runs
}

fn plain_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_certs_only(std::iter::empty())
        .build()
}

fn main() {
    let runs = 30;
    // First builds in the process pay one-time set-up (crypto provider, lazy statics).
    let (first_plain, first_plain_cost) = time(plain_http_client);
    let (first_default, first_default_cost) = time(|| reqwest::Client::builder().build());
    if let Err(error) = first_plain.and(first_default) {
        eprintln!("client build failed: {error}");
        std::process::exit(1);
    }
    println!(
        "first build in process, plain-HTTP client (no root certificates): {first_plain_cost:?}"
    );
    println!("first build in process, default client (platform verifier): {first_default_cost:?}");
    let plain = average(runs, || drop(plain_http_client()));
    let default = average(runs, || drop(reqwest::Client::builder().build()));
    println!("later builds, plain-HTTP client: {plain:?} each");
    println!("later builds, default client:    {default:?} each");
    let construct = average(runs, || drop(OllamaProvider::new("http://localhost:11434")));
    println!("OllamaProvider::new (client built lazily): {construct:?} each");

    // First request of a fresh provider against a local listener that answers /api/version.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("no runtime: {error}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot bind: {error}");
                return;
            }
        };
        let Ok(addr) = listener.local_addr() else { return };
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let body = r#"{"version":"0.12.0"}"#;
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let url = format!("http://{addr}");
        let mut total = Duration::ZERO;
        for _ in 0..runs {
            let start = Instant::now();
            let Ok(provider) = OllamaProvider::new(&url) else { return };
            if let Err(error) = provider.version().await {
                eprintln!("request failed: {error}");
                return;
            }
            total += start.elapsed();
        }
        println!(
            "fresh provider + first request (client build, connect, GET /api/version): {:?} each",
            total / runs
        );
    });
}
