//! A protocol-faithful scripted LLM server for tests and benchmarks.
//!
//! [`ScriptedServer`] speaks Ollama's native API (`/api/chat`, `/api/tags`, `/api/show`,
//! `/api/pull`, `/api/ps`, `/api/version`, `/`) and the OpenAI-compatible API
//! (`/v1/chat/completions`, `/v1/models`) with the field names and chunk shapes the real
//! servers send. Each chat request is answered by the next [`Turn`] of a [`Script`]; turns can
//! inject [`Fault`]s. Every request is recorded as a [`RecordedRequest`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), nanna_testkit::TestkitError> {
//! use nanna_testkit::{Script, ScriptedServer, Turn};
//! use serde_json::json;
//!
//! let server = ScriptedServer::start(
//!     Script::new()
//!         .turn(Turn::tool_call("read_file", json!({"path": "notes.txt"})))
//!         .turn(Turn::text("The notes say hello.")),
//! )
//! .await?;
//! // point the client at server.url(), run it, then:
//! assert_eq!(server.chat_requests().len(), 2);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod error;
mod golang;
pub mod llama;
mod llamacpp;
pub mod mcp;
mod models;
mod ollama;
mod openai;
mod recording;
mod script;
mod server;
mod vllm;
mod wire;

pub use error::TestkitError;
pub use models::{Flavor, ModelSpec, ServerConfig};
pub use recording::RecordedRequest;
pub use script::{Exhausted, Fault, Layout, Repeat, Script, ScriptedToolCall, Turn};
pub use server::ScriptedServer;
