//! The interactive session: a line editor with history, slash commands, streamed answers,
//! approvals on the terminal, Ctrl-C to cancel a turn.

use std::path::PathBuf;
use std::sync::Arc;

use nanna_agent::{Agent, AgentConfig, RunOutcome, SessionMeta, SessionStore};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio_util::sync::CancellationToken;

use crate::approval::TerminalApprover;
use crate::cancel::CtrlC;
use crate::cli::RunArgs;
use crate::error::{CliError, Result};
use crate::output::TerminalOutput;
use crate::render::Style;
use crate::settings::Settings;
use crate::task;

const HELP: &str = "\
Commands:
  /help          this help
  /exit          leave (also Ctrl-D, or Ctrl-C at the prompt)
  /clear         start a new session (forget the conversation)
  /model NAME    switch the model for the next turns
  /compact [WHAT] summarize the conversation so far to free context; WHAT says what to keep
  /session       show the session id (resume it later with --resume ID)
Ctrl-C while the assistant works cancels the turn; press it twice to quit.";

/// Where the line history lives: `$XDG_DATA_HOME/nanna/history` (or
/// `~/.local/share/nanna/history`).
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(base.join("nanna").join("history"))
}

/// What a line typed at the prompt asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Nothing.
    Empty,
    /// A message for the assistant.
    Message(&'a str),
    /// `/help`.
    Help,
    /// `/exit` or `/quit`.
    Exit,
    /// `/clear`.
    Clear,
    /// `/model NAME`, or `/model` alone to show it.
    Model(Option<&'a str>),
    /// `/session`.
    Session,
    /// `/compact`, optionally with what to keep.
    Compact(Option<&'a str>),
    /// An unknown slash command.
    Unknown(&'a str),
}

/// Classifies a line typed at the prompt.
pub fn parse_input(line: &str) -> Input<'_> {
    let line = line.trim();
    if line.is_empty() {
        return Input::Empty;
    }
    let Some(command) = line.strip_prefix('/') else {
        return Input::Message(line);
    };
    let mut parts = command.splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or("");
    let arg = parts.next().map(str::trim).filter(|a| !a.is_empty());
    match name {
        "help" | "?" => Input::Help,
        "exit" | "quit" | "q" => Input::Exit,
        "clear" | "new" => Input::Clear,
        "model" => Input::Model(arg),
        "session" => Input::Session,
        "compact" => Input::Compact(arg),
        _ => Input::Unknown(name),
    }
}

/// One interactive session: the agent plus what is needed to rebuild it.
struct Repl {
    settings: Settings,
    settings_model: String,
    config: AgentConfig,
    store: SessionStore,
    provider: Arc<dyn nanna_model::ModelProvider>,
    agent: Agent,
    /// The session's MCP servers; their tools join every agent built here.
    servers: nanna_mcp::McpServers,
}

impl Repl {
    /// Replaces the agent with one on `session` and the current configuration.
    fn new_agent(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        session: nanna_agent::Session,
    ) -> std::result::Result<(), nanna_agent::AgentError> {
        // Validated when the REPL started; the settings have not changed since.
        let tools = self
            .settings
            .tools()
            .unwrap_or_else(|_| nanna_tools::ToolRegistry::coding());
        self.agent = runtime.block_on(Agent::new(
            self.provider.clone(),
            with_mcp(tools, &self.config, &self.servers),
            self.config.clone(),
            session,
        ))?;
        Ok(())
    }
}

/// `tools` plus the running MCP servers' (the same names every time).
fn with_mcp(
    mut tools: nanna_tools::ToolRegistry,
    config: &AgentConfig,
    servers: &nanna_mcp::McpServers,
) -> nanna_tools::ToolRegistry {
    if config.tools_enabled {
        servers.register(&mut tools);
    }
    tools
}

/// Runs the REPL until `/exit`, Ctrl-D or Ctrl-C at the prompt.
pub fn run(settings: &Settings, run: &RunArgs) -> Result<()> {
    let config = task::agent_config(settings, run, true)?;
    let mcp_config = settings.mcp()?;
    let store = task::store()?;
    let session = task::session(&store, run, &config)?;
    let provider = settings.provider();
    let runtime = crate::runtime()?;
    let servers = if config.tools_enabled {
        runtime.block_on(nanna_mcp::McpServers::start(
            &mcp_config,
            &config.workspace,
            crate::mcp::sink(false),
        ))
    } else {
        nanna_mcp::McpServers::none()
    };
    let registry = match settings.tools() {
        Ok(tools) => with_mcp(tools, &config, &servers),
        Err(e) => {
            runtime.block_on(servers.shutdown());
            return Err(e);
        }
    };
    let agent = match runtime.block_on(Agent::new(
        provider.clone(),
        registry,
        config.clone(),
        session,
    )) {
        Ok(agent) => agent,
        Err(e) => {
            runtime.block_on(servers.shutdown());
            return Err(CliError::Agent(e.to_string()));
        }
    };
    if let Some(message) =
        crate::mcp::budget_warning(&agent.offered_tools(), mcp_config.tool_token_budget)
    {
        eprintln!("{} {message}", Style::stderr().yellow("warning:"));
    }
    let mut repl = Repl {
        settings: settings.clone(),
        settings_model: settings.model().to_owned(),
        config,
        store,
        provider,
        agent,
        servers,
    };
    let result = interact(&runtime, &mut repl);
    let Repl { servers, .. } = repl;
    runtime.block_on(servers.shutdown());
    result
}

/// The prompt loop.
fn interact(runtime: &tokio::runtime::Runtime, repl: &mut Repl) -> Result<()> {
    let style = Style::stderr();
    let mut editor = DefaultEditor::new()
        .map_err(|e| CliError::Other(format!("cannot start the line editor: {e}")))?;
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "{}",
        style.dim(&format!(
            "nanna · {} · {} · /help for commands, Ctrl-D to quit",
            repl.settings_model,
            repl.config.workspace.display()
        ))
    );
    let mut output = TerminalOutput::new(true);
    let prompt = if Style::stdout().enabled() {
        "\x1b[1;32m›\x1b[0m "
    } else {
        "› "
    };
    loop {
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Other(format!("reading input failed: {e}"))),
        };
        let input = parse_input(&line);
        if input != Input::Empty {
            let _ = editor.add_history_entry(line.trim());
        }
        match input {
            Input::Empty => {}
            Input::Help => eprintln!("{HELP}"),
            Input::Exit => break,
            Input::Session => eprintln!("session {}", repl.agent.session_id()),
            Input::Unknown(name) => {
                eprintln!(
                    "{} unknown command /{name}; /help lists them",
                    style.yellow("?")
                );
            }
            Input::Clear => match repl.store.create(SessionMeta {
                model: repl.config.model.clone(),
                workspace: repl.config.workspace.clone(),
            }) {
                Ok(session) => match repl.new_agent(runtime, session) {
                    Ok(()) => eprintln!(
                        "{}",
                        style.dim(&format!("new session {}", repl.agent.session_id()))
                    ),
                    Err(e) => eprintln!("{} {e}", style.red("error:")),
                },
                Err(e) => eprintln!("{} {e}", style.red("error:")),
            },
            Input::Compact(instruction) => {
                let agent = &mut repl.agent;
                let result = runtime.block_on(async {
                    let cancel = CancellationToken::new();
                    let _watch = CtrlC::watch(cancel.clone());
                    agent
                        .compact(instruction, cancel, &mut |event| output.event(&event))
                        .await
                });
                output.finish();
                if let Err(e) = result {
                    output.error(&e.to_string());
                }
            }
            Input::Model(None) => eprintln!("model {}", repl.config.model),
            Input::Model(Some(name)) => {
                let previous = std::mem::replace(&mut repl.config.model, name.to_owned());
                let id = repl.agent.session_id().to_owned();
                let switched = repl
                    .store
                    .open(&id)
                    .map_err(|e| e.to_string())
                    .and_then(|s| repl.new_agent(runtime, s).map_err(|e| e.to_string()));
                match switched {
                    Ok(()) => eprintln!("{}", style.dim(&format!("model {name}"))),
                    Err(e) => {
                        repl.config.model = previous;
                        eprintln!("{} {e}; keeping the previous model", style.red("error:"));
                    }
                }
            }
            Input::Message(text) => {
                let agent = &mut repl.agent;
                let result = runtime.block_on(async {
                    let cancel = CancellationToken::new();
                    let _watch = CtrlC::watch(cancel.clone());
                    let approver = TerminalApprover::new(cancel.clone());
                    agent
                        .run(text, &approver, cancel, &mut |event| output.event(&event))
                        .await
                });
                output.finish();
                match result {
                    Ok(RunOutcome::Completed { .. }) => {}
                    Ok(RunOutcome::MaxTurns { turns }) => {
                        eprintln!(
                            "{} stopped after {turns} turns; say \"continue\" to go on",
                            style.yellow("!")
                        );
                    }
                    Ok(RunOutcome::Cancelled { .. }) => {
                        eprintln!("{}", style.dim("cancelled"));
                    }
                    Err(e) => output.error(&e.to_string()),
                }
            }
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_commands_parse() {
        assert_eq!(parse_input("  "), Input::Empty);
        assert_eq!(parse_input("hello"), Input::Message("hello"));
        assert_eq!(parse_input("/exit"), Input::Exit);
        assert_eq!(
            parse_input("/model  qwen3:8b "),
            Input::Model(Some("qwen3:8b"))
        );
        assert_eq!(parse_input("/model"), Input::Model(None));
        assert_eq!(parse_input("/clear"), Input::Clear);
        assert_eq!(parse_input("/nope"), Input::Unknown("nope"));
        assert_eq!(parse_input("/compact"), Input::Compact(None));
        assert_eq!(
            parse_input("/compact  keep the test names "),
            Input::Compact(Some("keep the test names"))
        );
    }
}
