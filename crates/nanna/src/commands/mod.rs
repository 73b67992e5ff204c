//! One module per subcommand that is not an agent run.

pub mod health;
pub mod mcp;
pub mod mcp_server;
pub mod models;
pub mod pull;
pub mod sandbox;
pub mod serve;
pub mod sessions;
pub mod tools;
