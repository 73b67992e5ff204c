//! What the MCP client tests share: an event recorder and config files.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use nanna_mcp::{EventSink, McpConfig, McpEvent};

/// Every event a sink received, in order.
pub type Events = Arc<Mutex<Vec<McpEvent>>>;

/// A sink that records every event.
pub fn recorder() -> (EventSink, Events) {
    let events: Events = Arc::default();
    let sink = {
        let events = events.clone();
        Arc::new(move |e: McpEvent| events.lock().unwrap().push(e)) as EventSink
    };
    (sink, events)
}

/// `tables` written as `dir/config.toml` and loaded.
pub fn config(dir: &Path, tables: &str) -> McpConfig {
    let path = dir.join("config.toml");
    std::fs::write(&path, tables).unwrap();
    nanna_config::ConfigLoader::new()
        .user_file(path)
        .load_mcp(&nanna_config::Overrides::new())
        .unwrap()
}
