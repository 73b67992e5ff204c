//! The command line: every subcommand and flag, parsed with clap.

use std::path::PathBuf;

use clap::{Arg, ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use nanna_model::ProviderKind;
use nanna_sandbox::SandboxMode;

const EXAMPLES: &str = "\
Examples:
  nanna chat                                  interactive session in the current directory
  nanna chat --tools --model llama3.1:8b      pick the model
  nanna chat --prompt \"Hello, world!\"         one task, then exit
  echo \"explain src/main.rs\" | nanna chat     the task from stdin
  nanna exec --full-auto \"fix the failing test\"
  nanna exec --json \"list the TODOs\" | jq .   one JSON event per line
  nanna chat --resume last                    continue the latest session
  nanna -c temperature=0.2 -c think=low chat  any setting of config.toml, for one run
  nanna models --json
  nanna health
  nanna pull qwen2.5-coder:7b
  nanna sandbox -- sh -c 'touch /etc/x'       see what a sandbox mode allows
  nanna mcp add fs -- npx -y @modelcontextprotocol/server-filesystem ~/src
  nanna mcp list
  nanna mcp-server -C ~/src --sandbox workspace-write   MCP server for editors (stdio)
  nanna serve --listen 0.0.0.0:8080
  nanna completions bash > /etc/bash_completion.d/nanna

Exit status: 0 done, 1 failed (model server, settings, tool loop error), 2 bad usage,
3 stopped at --max-turns, 130 cancelled (Ctrl-C).
Settings come from flags, then -c KEY=VALUE, then NANNA_* / OLLAMA_* variables, then
$XDG_CONFIG_HOME/nanna/config.toml, then /etc/nanna/config.toml. Diagnostics: RUST_LOG
(e.g. RUST_LOG=warn or RUST_LOG=nanna_model=debug), on stderr.";

/// Nanna Coder: a local-first coding assistant for models served by Ollama or an
/// OpenAI-compatible server (llama.cpp, vLLM...).
#[derive(Debug, Parser)]
#[command(name = "nanna", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Model-server settings accepted by every subcommand; they override the config file and
/// the environment.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Model to use (e.g. llama3.1:8b).
    #[arg(long, short = 'm', global = true, value_name = "NAME")]
    pub model: Option<String>,
    /// Kind of model server.
    #[arg(long, global = true, value_enum, value_name = "KIND")]
    pub provider: Option<ProviderKind>,
    /// Base URL of the model server (e.g. http://127.0.0.1:11434).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Context window in tokens sent to the server (Ollama's num_ctx).
    #[arg(long, global = true, value_name = "TOKENS")]
    pub context_window: Option<u32>,
    /// Sampling temperature (0 to 2).
    #[arg(long, global = true, value_name = "T")]
    pub temperature: Option<f32>,
    /// How long the server keeps the model loaded after a request (Ollama: `30m`, `-1`).
    #[arg(long, global = true, value_name = "DURATION")]
    pub keep_alive: Option<String>,
    /// Maximum tokens the model may generate per reply.
    #[arg(long, global = true, value_name = "TOKENS")]
    pub max_tokens: Option<u32>,
    /// Whether a thinking model reasons before it answers: true, false, or a level (low,
    /// medium, high, max). Default: the server's choice (Ollama: on for models that think).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub think: Option<String>,
    /// Read settings from this file instead of the default config location.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `-c KEY=VALUE` overrides, in command-line order (see [`Cli::command_with_settings`]).
    #[arg(skip)]
    pub set: Vec<String>,
    /// Seconds the server may stay silent before and within a reply (default 300).
    #[arg(long, global = true, value_name = "SECS")]
    pub idle_timeout: Option<u64>,
    /// Seconds one whole model turn may take, however busy the connection (default 600).
    #[arg(long, global = true, value_name = "SECS")]
    pub turn_timeout: Option<u64>,
    /// Whether the model calls tools natively: auto asks the server (default).
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    pub native_tools: Option<NativeToolsArg>,
    /// Run bare or fenced JSON in a reply as a tool call even when the model has native
    /// tool calling (<tool_call> markup always runs).
    #[arg(long, global = true)]
    pub json_tool_calls: bool,
}

const SETTING_ID: &str = "setting_override";

impl Cli {
    /// The command line with `-c KEY=VALUE` on the top level and on every subcommand.
    /// Not a clap `global` argument: one given both before and after the subcommand keeps
    /// only the later values (clap_builder `ArgMatcher::fill_in_global_values` replaces the
    /// parent's), and `nanna -c a=1 exec -c b=2` must apply both.
    pub fn command_with_settings() -> clap::Command {
        fn add(cmd: clap::Command) -> clap::Command {
            cmd.arg(
                Arg::new(SETTING_ID)
                    .short('c')
                    .value_name("KEY=VALUE")
                    .action(ArgAction::Append)
                    .help(
                        "Override a setting of config.toml for this run: the value in TOML \
                         (-c temperature=0.2, -c extra_tools='[\"calculate\"]', \
                         -c mcp_servers.fs.enabled=false), plain text when it is not TOML. \
                         Repeatable; wins over files and variables, flags win over it",
                    ),
            )
            .mut_subcommands(add)
        }
        add(Cli::command())
    }

    /// Parses `args` (the program name first), `-c` overrides included.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command_with_settings().try_get_matches_from(args)?;
        let mut cli = Self::from_arg_matches(&matches)?;
        let mut level = Some(&matches);
        while let Some(m) = level {
            cli.global.set.extend(
                m.get_many::<String>(SETTING_ID)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            level = m.subcommand().map(|(_, sub)| sub);
        }
        Ok(cli)
    }

    /// Parses the process's arguments; prints the usage error and exits on bad ones.
    pub fn parse_args() -> Self {
        Self::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }
}

/// Whether the model calls tools natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NativeToolsArg {
    /// Ask the server (Ollama's model capabilities); yes when it does not say.
    Auto,
    /// The model calls tools natively.
    On,
    /// Describe the tools in the prompt and read calls from the text.
    Off,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Talk with the assistant: a REPL on a terminal, or one task with --prompt or piped stdin.
    Chat(ChatArgs),
    /// Run one task without interaction (scripts, CI); exit code tells success.
    Exec(ExecArgs),
    /// List the models on the server with their size, context length and tool support.
    Models(JsonFlag),
    /// Check the model server and the configured model; non-zero exit when unhealthy.
    Health(JsonFlag),
    /// List the tools offered to the model (built-in and MCP), with their schemas and token cost.
    Tools(ToolsArgs),
    /// Download a model to the server (Ollama only).
    Pull(PullArgs),
    /// List, show or remove saved sessions.
    Sessions(SessionsArgs),
    /// Serve a health endpoint and stay up (the assistant container's main process).
    Serve(ServeArgs),
    /// Configure the MCP servers whose tools sessions offer ([mcp_servers] in config.toml).
    Mcp(McpArgs),
    /// Serve nanna's tools (read, write, edit, list, glob, grep, shell) to MCP clients.
    #[command(name = "mcp-server")]
    McpServer(McpServerArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Run a command under a sandbox mode, as the model's commands run (see what it allows).
    Sandbox(SandboxArgs),
}

/// Arguments of `nanna tools`.
#[derive(Debug, Clone, Args)]
pub struct ToolsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Built-in tools only: do not start the configured MCP servers.
    #[arg(long)]
    pub no_mcp: bool,
    /// Workspace the MCP servers start in (default: the current directory).
    #[arg(short = 'C', long = "workspace", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// Arguments of `nanna mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// What to do (default: list).
    #[command(subcommand)]
    pub action: Option<McpAction>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `nanna mcp` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum McpAction {
    /// List the configured servers (system and user files).
    List,
    /// Show one server's settings.
    Get {
        /// The server's name.
        name: String,
    },
    /// Add a server to your config file (or replace one): `add NAME -- CMD ARGS...` for a
    /// stdio server, `add NAME --url URL` for a streamable-HTTP server.
    Add {
        /// The server's name (letters, digits, `_`, `-`); prefixes its tools (`NAME__tool`).
        name: String,
        /// URL of a streamable-HTTP server.
        #[arg(long, value_name = "URL", conflicts_with = "command")]
        url: Option<String>,
        /// Variable holding the HTTP server's bearer token.
        #[arg(long, value_name = "VAR", requires = "url")]
        bearer_token_env_var: Option<String>,
        /// Environment variable for a stdio server (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", conflicts_with = "url")]
        env: Vec<String>,
        /// The stdio server's command and arguments, after `--`.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Remove a server from your config file.
    Remove {
        /// The server's name.
        name: String,
    },
}

/// Arguments of `nanna mcp-server`.
#[derive(Debug, Clone, Args)]
pub struct McpServerArgs {
    /// Workspace the tools are confined to (default: the current directory).
    #[arg(short = 'C', long = "workspace", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// What the tools may change (default read-only): read-only offers the reading tools and
    /// `shell` under a read-only OS sandbox; workspace-write adds write_file and edit_file,
    /// and lets `shell` write in the workspace. `shell` is offered only where the sandbox can
    /// be enforced.
    #[arg(long, value_enum, value_name = "MODE")]
    pub sandbox: Option<SandboxMode>,
    /// Let `shell`'s commands use the network in read-only and workspace-write modes.
    #[arg(long)]
    pub network: bool,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio; ADDR must be a loopback
    /// address (e.g. 127.0.0.1:8765). Clients authenticate with the bearer token printed at
    /// start (or the one in NANNA_MCP_SERVER_TOKEN).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

/// A `--json` switch.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Whether writes and commands need confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApprovalArg {
    /// Ask on the terminal before each write or command.
    Ask,
    /// Run allowed actions without asking.
    Auto,
}

/// Settings of an agent run, shared by `chat` and `exec`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Offer tools to the model (the default).
    #[arg(long, overrides_with = "no_tools")]
    pub tools: bool,
    /// Do not offer tools: plain chat.
    #[arg(long)]
    pub no_tools: bool,
    /// Workspace directory the tools work in (default: the current directory).
    #[arg(short = 'C', long = "workspace", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Continue a saved session: its id, or `last` (the default when no id is given).
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "last")]
    pub resume: Option<String>,
    /// With --resume: do not write to the session (e.g. while another nanna process is
    /// writing it); the conversation goes on in memory.
    #[arg(long, requires = "resume")]
    pub session_read_only: bool,
    /// Stop after this many model turns.
    #[arg(long, value_name = "N")]
    pub max_turns: Option<u32>,
    /// What the agent and its commands may change (commands run in an OS sandbox).
    #[arg(long, value_enum, value_name = "MODE")]
    pub sandbox: Option<SandboxMode>,
    /// Let commands use the network in read-only and workspace-write sessions.
    #[arg(long)]
    pub network: bool,
    /// Whether to ask before writes and commands.
    #[arg(long, value_enum, value_name = "MODE")]
    pub approval: Option<ApprovalArg>,
    /// Shorthand for --sandbox workspace-write --approval auto.
    #[arg(long)]
    pub full_auto: bool,
}

impl RunArgs {
    /// Whether tools are offered.
    pub fn tools_enabled(&self) -> bool {
        !self.no_tools
    }
}

/// Arguments of `nanna chat`.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Run this one task and exit instead of starting the REPL.
    #[arg(long, short = 'p', value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Agent settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Arguments of `nanna exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// The task; read from stdin when omitted.
    #[arg(value_name = "TASK")]
    pub task: Vec<String>,
    /// Print one JSON object per event, one per line.
    #[arg(long)]
    pub json: bool,
    /// Agent settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Arguments of `nanna pull`.
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Model to download (e.g. qwen2.5-coder:7b).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Print progress as JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `nanna sessions`.
#[derive(Debug, Clone, Args)]
pub struct SessionsArgs {
    /// What to do with sessions (default: list).
    #[command(subcommand)]
    pub action: Option<SessionsAction>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `nanna sessions` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum SessionsAction {
    /// List saved sessions, newest first.
    List,
    /// Show the messages of a session (`last` for the newest).
    Show {
        /// Session id or `last`.
        id: String,
    },
    /// Delete a session.
    Rm {
        /// Session id or `last`.
        id: String,
    },
}

/// Arguments of `nanna serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// Instead of serving, ask the `nanna serve` at --listen for its /health and exit 0 if it
    /// is healthy (a container health check: the images have no curl).
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `nanna sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// The sandbox mode.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SandboxMode::WorkspaceWrite)]
    pub mode: SandboxMode,
    /// Let the command use the network.
    #[arg(long)]
    pub network: bool,
    /// Workspace directory (default: the current directory).
    #[arg(short = 'C', long = "workspace", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Arguments of `nanna completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// Shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
        Cli::command_with_settings().debug_assert();
    }

    #[test]
    fn seed_forms_parse() {
        let cli = Cli::try_parse_from(["nanna", "chat", "--tools", "--model", "llama3.1:8b"])
            .expect("parses");
        assert_eq!(cli.global.model.as_deref(), Some("llama3.1:8b"));
        let Command::Chat(chat) = cli.command else {
            panic!("not chat")
        };
        assert!(chat.run.tools_enabled());

        let cli =
            Cli::try_parse_from(["nanna", "chat", "--prompt", "Hello, world!"]).expect("parses");
        let Command::Chat(chat) = cli.command else {
            panic!("not chat")
        };
        assert_eq!(chat.prompt.as_deref(), Some("Hello, world!"));
    }

    #[test]
    fn no_tools_and_resume_default() {
        let cli = Cli::try_parse_from(["nanna", "exec", "--no-tools", "--resume", "--", "do it"])
            .expect("parses");
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert!(!exec.run.tools_enabled());
        assert_eq!(exec.run.resume.as_deref(), Some("last"));
        assert_eq!(exec.task, vec!["do it".to_string()]);
    }

    #[test]
    fn global_flags_after_subcommand() {
        let cli = Cli::try_parse_from([
            "nanna",
            "models",
            "--provider",
            "openai",
            "--url",
            "http://x",
        ])
        .expect("parses");
        assert_eq!(cli.global.provider, Some(ProviderKind::OpenAi));
        assert_eq!(cli.global.url.as_deref(), Some("http://x"));
    }

    #[test]
    fn settings_overrides_repeat_anywhere() {
        let cli = Cli::try_parse_args([
            "nanna",
            "-c",
            "temperature=0.2",
            "exec",
            "-cthink=low",
            "-c",
            "extra_tools=[\"calculate\"]",
            "--",
            "-c",
            "x=1",
        ])
        .expect("parses");
        assert_eq!(
            cli.global.set,
            [
                "temperature=0.2",
                "think=low",
                "extra_tools=[\"calculate\"]"
            ]
        );
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.task, ["-c", "x=1"]);
        let cli = Cli::try_parse_args(["nanna", "mcp", "list", "-c", "tool_token_budget=10"])
            .expect("parses");
        assert_eq!(cli.global.set, ["tool_token_budget=10"]);
    }

    #[test]
    fn bad_provider_is_rejected() {
        assert!(Cli::try_parse_from(["nanna", "models", "--provider", "nope"]).is_err());
    }
}

#[cfg(test)]
mod sandbox_tests {
    use super::*;

    #[test]
    fn sandbox_takes_the_command_after_the_separator() {
        let cli = Cli::try_parse_from([
            "nanna",
            "sandbox",
            "--mode",
            "read-only",
            "--network",
            "--",
            "ls",
            "-la",
        ])
        .expect("parses");
        let Command::Sandbox(args) = cli.command else {
            panic!("not sandbox")
        };
        assert_eq!(args.mode, SandboxMode::ReadOnly);
        assert!(args.network);
        assert_eq!(args.command, ["ls", "-la"]);
        assert!(Cli::try_parse_from(["nanna", "sandbox"]).is_err());
        assert!(Cli::try_parse_from(["nanna", "sandbox", "--mode", "open", "--", "x"]).is_err());
    }
}
