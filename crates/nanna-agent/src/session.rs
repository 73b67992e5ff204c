//! Conversations stored as JSON Lines: [`SessionStore`], [`Session`].
//!
//! File `<dir>/<id>.jsonl`: the first line is a header (`id`, `created`, `model`,
//! `workspace`), then one line per message or compaction. Each record is written with a
//! single `write` call on an unbuffered file (and flushed), so a crash or `kill -9` loses at
//! most the message in flight. The system prompt is not stored: it is rebuilt on resume.
//!
//! One process writes a session at a time: it holds an exclusive advisory lock
//! (`flock(2)`, through [`File::try_lock`]) on `<dir>/<id>.lock`, which also records its
//! process id. The kernel releases the lock when the process ends, however it ends. A
//! second writer gets [`SessionError::Locked`] naming the holder; a reader may still open
//! the session read-only ([`SessionStore::open_read_only`]). Lock files are never deleted
//! while a session exists: deleting one while another process waits on it would let two
//! writers in.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nanna_model::{ChatMessage, MessageRole};
use serde::{Deserialize, Serialize};

use crate::error::SessionError;
use crate::event::CompactionStep;
use crate::tokens::Calibration;

const FORMAT_VERSION: u32 = 1;

/// Result with [`SessionError`].
pub type Result<T> = std::result::Result<T, SessionError>;

/// What a new session is about.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMeta {
    /// Model in use.
    pub model: String,
    /// Workspace directory.
    pub workspace: PathBuf,
}

/// The header line of a session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionHeader {
    /// Session id, sortable by creation time.
    pub id: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Model at creation.
    pub model: String,
    /// Workspace at creation.
    pub workspace: PathBuf,
}

/// One line of [`SessionStore::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Model at creation.
    pub model: String,
    /// Workspace at creation.
    pub workspace: PathBuf,
    /// Messages stored (user, assistant and tool).
    pub messages: usize,
    /// Start of the first user message, for display.
    pub title: Option<String>,
    /// The session file.
    pub path: PathBuf,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RecordOut<'a> {
    Header {
        version: u32,
        #[serde(flatten)]
        header: &'a SessionHeader,
    },
    Message {
        message: &'a ChatMessage,
    },
    Compaction {
        step: CompactionStep,
        messages: &'a [ChatMessage],
        tokens_before: u32,
        tokens_after: u32,
    },
    Usage(&'a StoredUsage),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RecordIn {
    Header {
        #[serde(flatten)]
        header: SessionHeader,
    },
    Message {
        message: ChatMessage,
    },
    /// Either the whole conversation after the compaction (`messages`), or, as written
    /// before the compaction ladder, the first `summarized` messages replaced by `content`.
    Compaction {
        #[serde(default)]
        messages: Option<Vec<ChatMessage>>,
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        summarized: usize,
    },
    Usage(StoredUsage),
}

/// The server's count of a request, and what the token ledger had learned, so that a
/// resumed session starts from the server's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredUsage {
    /// Conversation messages (the system prompt aside) the request carried.
    pub(crate) messages: usize,
    /// The server's count of the whole prompt.
    pub(crate) prompt_tokens: u32,
    /// Model, system prompt and tools the count was made with ([`crate::tokens::fingerprint`]).
    pub(crate) fingerprint: String,
    /// The model.
    pub(crate) model: String,
    /// What the ledger had learned.
    pub(crate) calibration: Calibration,
    /// Whether the conversation was rewritten since (the count no longer describes a
    /// prefix of it).
    #[serde(skip)]
    pub(crate) stale: bool,
}

/// An open conversation: its header, the messages to resume with, and the file new records
/// are appended to (none for an in-memory or read-only session).
#[derive(Debug)]
pub struct Session {
    header: SessionHeader,
    path: Option<PathBuf>,
    file: Option<File>,
    /// The exclusive lock held while this process may write the session (released when
    /// the file is closed).
    _lock: Option<File>,
    messages: Vec<ChatMessage>,
    warnings: Vec<String>,
    resumed: bool,
    usage: Option<StoredUsage>,
}

impl Session {
    /// A session kept only in memory (nothing is written).
    pub fn in_memory(meta: SessionMeta) -> Self {
        Self {
            header: SessionHeader {
                id: new_id(),
                created: rfc3339_now(),
                model: meta.model,
                workspace: meta.workspace,
            },
            path: None,
            file: None,
            _lock: None,
            messages: Vec::new(),
            warnings: Vec::new(),
            resumed: false,
            usage: None,
        }
    }

    /// Whether new messages are written to the session file (false for an in-memory or
    /// read-only session).
    pub fn is_saved(&self) -> bool {
        self.file.is_some()
    }

    /// Session id.
    pub fn id(&self) -> &str {
        &self.header.id
    }

    /// Header as written in the file.
    pub fn header(&self) -> &SessionHeader {
        &self.header
    }

    /// The session file, if persisted.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Conversation to resume with (without the system prompt), compactions applied.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Problems found while opening (corrupt lines, repaired tool calls).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the session was opened from disk rather than created.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    pub(crate) fn take_messages(&mut self) -> Vec<ChatMessage> {
        std::mem::take(&mut self.messages)
    }

    pub(crate) fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Appends a message record and flushes it.
    pub(crate) fn append_message(&mut self, message: &ChatMessage) -> Result<()> {
        self.write_record(&RecordOut::Message { message })
    }

    /// Appends a compaction record: the conversation (system prompt aside) is now `messages`.
    pub(crate) fn append_compaction(
        &mut self,
        step: CompactionStep,
        messages: &[ChatMessage],
        tokens_before: u32,
        tokens_after: u32,
    ) -> Result<()> {
        self.write_record(&RecordOut::Compaction {
            step,
            messages,
            tokens_before,
            tokens_after,
        })
    }

    /// Appends the server's count of the last request.
    pub(crate) fn append_usage(&mut self, usage: &StoredUsage) -> Result<()> {
        self.write_record(&RecordOut::Usage(usage))
    }

    /// The last server count stored in the file, if any.
    pub(crate) fn stored_usage(&self) -> Option<&StoredUsage> {
        self.usage.as_ref()
    }

    fn write_record(&mut self, record: &RecordOut<'_>) -> Result<()> {
        let (Some(file), Some(path)) = (self.file.as_mut(), self.path.as_ref()) else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(record).map_err(|e| SessionError::Io {
            path: path.clone(),
            detail: format!("cannot encode record: {e}"),
        })?;
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| SessionError::io(path, &e))
    }
}

/// The directory of session files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    /// A store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_DATA_HOME/nanna/sessions`, else `~/.local/share/nanna/sessions`.
    pub fn default_location() -> Result<Self> {
        let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(xdg) => PathBuf::from(xdg),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".local/share"),
                None => return Err(SessionError::NoDataDir),
            },
        };
        Ok(Self::new(base.join("nanna/sessions")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new session and writes its header. The file is readable by its owner only
    /// (conversations may hold secrets).
    pub fn create(&self, meta: SessionMeta) -> Result<Session> {
        std::fs::create_dir_all(&self.dir).map_err(|e| SessionError::io(&self.dir, &e))?;
        let created = rfc3339_now();
        for attempt in 0..16u32 {
            let id = new_id();
            let path = self.dir.join(format!("{id}.jsonl"));
            let mut options = OpenOptions::new();
            options.append(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            // The lock first: nobody else can write this id between its creation and ours.
            let lock = match self.lock(&id) {
                Ok(lock) => lock,
                Err(SessionError::Locked { .. }) if attempt < 15 => continue,
                Err(e) => return Err(e),
            };
            let file = match options.open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 15 => continue,
                Err(e) => return Err(SessionError::io(&path, &e)),
            };
            let mut session = Session {
                header: SessionHeader {
                    id,
                    created: created.clone(),
                    model: meta.model.clone(),
                    workspace: meta.workspace.clone(),
                },
                path: Some(path),
                file: Some(file),
                _lock: Some(lock),
                messages: Vec::new(),
                warnings: Vec::new(),
                resumed: false,
                usage: None,
            };
            let header = session.header.clone();
            session.write_record(&RecordOut::Header {
                version: FORMAT_VERSION,
                header: &header,
            })?;
            return Ok(session);
        }
        Err(SessionError::Io {
            path: self.dir.clone(),
            detail: "could not pick an unused session id".into(),
        })
    }

    /// Opens a session by id, unique id prefix, or `last` (the most recent), to continue
    /// it: takes the session's lock ([`SessionError::Locked`] while another process holds
    /// it), drops a partly written last line and answers dangling tool calls.
    pub fn open(&self, id_or_last: &str) -> Result<Session> {
        let id = self.resolve(id_or_last)?;
        let lock = self.lock(&id)?;
        let path = self.dir.join(format!("{id}.jsonl"));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| SessionError::io(&path, &e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| SessionError::io(&path, &e))?;
        let loaded = load(&path, &bytes)?;
        if loaded.valid_len < bytes.len() {
            // Cut the partial last line so new records start on a line of their own.
            file.set_len(loaded.valid_len as u64)
                .map_err(|e| SessionError::io(&path, &e))?;
        }
        if loaded.needs_newline {
            file.write_all(b"\n")
                .map_err(|e| SessionError::io(&path, &e))?;
        }
        let mut session = Session {
            header: loaded.header,
            path: Some(path),
            file: Some(file),
            _lock: Some(lock),
            messages: loaded.messages,
            warnings: loaded.warnings,
            resumed: true,
            usage: loaded.usage,
        };
        session.repair_dangling_tool_calls()?;
        Ok(session)
    }

    /// Opens a session without taking its lock and without ever writing it (to show it, or
    /// to continue a conversation another process is writing): new messages stay in memory,
    /// repairs too.
    pub fn open_read_only(&self, id_or_last: &str) -> Result<Session> {
        let id = self.resolve(id_or_last)?;
        let path = self.dir.join(format!("{id}.jsonl"));
        let bytes = std::fs::read(&path).map_err(|e| SessionError::io(&path, &e))?;
        let loaded = load(&path, &bytes)?;
        let mut session = Session {
            header: loaded.header,
            path: Some(path),
            file: None,
            _lock: None,
            messages: loaded.messages,
            usage: loaded.usage,
            warnings: loaded.warnings,
            resumed: true,
        };
        session.repair_dangling_tool_calls()?;
        Ok(session)
    }

    /// Takes the exclusive lock of session `id` and records this process's id in it.
    ///
    /// A lock just released can look held for a moment: a child process forked by another
    /// thread shares the lock's open file until it executes its program (`flock(2)` locks
    /// belong to the open file, which `fork` shares). So a busy lock is retried for a short
    /// while before it counts as held.
    fn lock(&self, id: &str) -> Result<File> {
        const PATIENCE: std::time::Duration = std::time::Duration::from_millis(300);
        let path = self.dir.join(format!("{id}.lock"));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|e| SessionError::io(&path, &e))?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(SessionError::Locked {
                        id: id.to_owned(),
                        pid: text.trim().parse().ok(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(SessionError::io(&path, &e));
                }
            }
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| SessionError::io(&path, &e))?;
        Ok(file)
    }

    /// All sessions, oldest first.
    pub fn list(&self) -> Result<Vec<SessionSummary>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            let path = self.dir.join(format!("{id}.jsonl"));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(loaded) = load(&path, &bytes) else {
                continue;
            };
            let title = loaded.first_request.as_deref().map(title_of);
            out.push(SessionSummary {
                id: loaded.header.id,
                created: loaded.header.created,
                model: loaded.header.model,
                workspace: loaded.header.workspace,
                messages: loaded.stored_messages,
                title,
                path,
            });
        }
        Ok(out)
    }

    /// Deletes a session (by id, unique prefix, or `last`); refused while another process
    /// writes it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let lock = self.lock(&id)?;
        let path = self.dir.join(format!("{id}.jsonl"));
        std::fs::remove_file(&path).map_err(|e| SessionError::io(&path, &e))?;
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.lock")));
        drop(lock);
        Ok(())
    }

    /// Session ids in the directory, sorted (oldest first).
    fn ids(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SessionError::io(&self.dir, &e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".jsonl")?;
                valid_id(id).then(|| id.to_owned())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn resolve(&self, id_or_last: &str) -> Result<String> {
        if id_or_last == "last" {
            return self.ids()?.pop().ok_or_else(|| SessionError::NoSessions {
                dir: self.dir.clone(),
            });
        }
        if !valid_id(id_or_last) {
            return Err(SessionError::InvalidId {
                id: id_or_last.to_owned(),
            });
        }
        let ids = self.ids()?;
        if ids.iter().any(|i| i == id_or_last) {
            return Ok(id_or_last.to_owned());
        }
        let matches: Vec<String> = ids
            .into_iter()
            .filter(|i| i.starts_with(id_or_last))
            .collect();
        match matches.len() {
            0 => Err(SessionError::NotFound {
                id: id_or_last.to_owned(),
                dir: self.dir.clone(),
            }),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(SessionError::Ambiguous {
                id: id_or_last.to_owned(),
                candidates: matches,
            }),
        }
    }
}

impl Session {
    /// Answers tool calls of the last assistant message that have no result (nanna died
    /// while they ran: a signal, SIGKILL, a crash), so the next request is valid and says
    /// what happened: interrupted by nanna's exit, not cancelled by the user (a cancellation
    /// is recorded as it happens). Appended, like any message.
    fn repair_dangling_tool_calls(&mut self) -> Result<()> {
        let Some(pos) = self
            .messages
            .iter()
            .rposition(|m| m.role == MessageRole::Assistant)
        else {
            return Ok(());
        };
        let answered: HashSet<&str> = self.messages[pos + 1..]
            .iter()
            .filter_map(|m| m.tool_call_id.as_deref())
            .collect();
        let missing: Vec<ChatMessage> = self.messages[pos]
            .tool_calls
            .iter()
            .filter(|c| !answered.contains(c.id.as_str()))
            .map(|c| {
                ChatMessage::tool_result(
                    &c.id,
                    &c.name,
                    "error: interrupted: nanna exited before this call finished (a command it \
                     ran was stopped with it); it may have partly run, so check its effects \
                     before running it again",
                )
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.warnings.push(format!(
            "{} tool call(s) had no result because nanna exited while they ran; they were \
             marked as interrupted",
            missing.len()
        ));
        for m in missing {
            self.append_message(&m)?;
            self.messages.push(m);
        }
        Ok(())
    }
}

struct Loaded {
    header: SessionHeader,
    messages: Vec<ChatMessage>,
    /// The first user message ever stored (compactions may have replaced it since).
    first_request: Option<String>,
    usage: Option<StoredUsage>,
    stored_messages: usize,
    warnings: Vec<String>,
    /// Bytes up to the end of the last complete, readable line.
    valid_len: usize,
    /// The last record lacks its newline.
    needs_newline: bool,
}

fn load(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    let mut header = None;
    let mut messages = Vec::new();
    let mut usage: Option<StoredUsage> = None;
    let mut first_request = None;
    let mut stored_messages = 0;
    let mut warnings = Vec::new();
    let mut valid_len = 0;
    let mut needs_newline = false;
    let mut at = 0;
    let mut line_no = 0;
    while at < bytes.len() {
        line_no += 1;
        let (line, next, complete) = match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(nl) => (&bytes[at..at + nl], at + nl + 1, true),
            None => (&bytes[at..], bytes.len(), false),
        };
        let parsed = serde_json::from_slice::<RecordIn>(line);
        match (parsed, header.is_some()) {
            (Ok(RecordIn::Header { header: h }), false) => header = Some(h),
            (Err(e), false) => {
                return Err(SessionError::Corrupt {
                    path: path.to_owned(),
                    detail: e.to_string(),
                });
            }
            (
                Ok(RecordIn::Message { .. } | RecordIn::Compaction { .. } | RecordIn::Usage(_)),
                false,
            ) => {
                return Err(SessionError::Corrupt {
                    path: path.to_owned(),
                    detail: "no header".into(),
                });
            }
            (Ok(RecordIn::Header { .. }), true) => {
                warnings.push(format!("line {line_no}: a second header was ignored"));
            }
            (Ok(RecordIn::Message { message }), true) => {
                if first_request.is_none() && message.role == MessageRole::User {
                    first_request = Some(message.content.clone());
                }
                messages.push(message);
                stored_messages += 1;
            }
            (
                Ok(RecordIn::Compaction {
                    messages: rewritten,
                    content,
                    summarized,
                }),
                true,
            ) => {
                if let Some(rewritten) = rewritten {
                    messages = rewritten;
                } else {
                    let rest = messages.split_off(summarized.min(messages.len()));
                    messages.clear();
                    messages.push(ChatMessage::user(content.unwrap_or_default()));
                    messages.extend(rest);
                }
                if let Some(usage) = &mut usage {
                    usage.stale = true;
                }
            }
            (Ok(RecordIn::Usage(stored)), true) => usage = Some(stored),
            (Err(_), true) if line.iter().all(u8::is_ascii_whitespace) => {}
            (Err(e), true) => {
                if complete {
                    warnings.push(format!("line {line_no} is unreadable and was skipped: {e}"));
                } else {
                    warnings.push(format!(
                        "the last line was only partly written (the process stopped mid-write) and was dropped: {e}"
                    ));
                    break;
                }
            }
        }
        valid_len = next;
        // A readable record whose newline was not written: keep it, add the newline on open.
        needs_newline = !complete;
        at = next;
    }
    let header = header.ok_or_else(|| SessionError::Corrupt {
        path: path.to_owned(),
        detail: "empty file".into(),
    })?;
    Ok(Loaded {
        header,
        messages,
        first_request,
        usage,
        stored_messages,
        warnings,
        valid_len,
        needs_newline,
    })
}

fn title_of(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut end = line.len().min(60);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    if end < line.len() {
        format!("{}…", &line[..end])
    } else {
        line.to_owned()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new id `YYYYMMDDTHHMMSS-xxxx` (UTC time, 4 random hex digits).
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    let stamp: String = rfc3339_now()
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | 'Z'))
        .collect();
    format!("{stamp}-{:04x}", hasher.finish() & 0xffff)
}

/// The current UTC time as RFC 3339 (`2026-11-26T12:34:56Z`).
fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanna_model::ToolCall;
    use serde_json::json;

    fn meta() -> SessionMeta {
        SessionMeta {
            model: "m".into(),
            workspace: PathBuf::from("/w"),
        }
    }

    #[test]
    fn ids_sort_by_time_and_are_valid() {
        let id = new_id();
        assert_eq!(id.len(), 20, "{id}");
        assert!(valid_id(&id));
        assert!(!valid_id("../etc/passwd"));
        assert!(!valid_id(""));
    }

    #[test]
    fn create_append_open_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path().join("s"));
        let mut s = store.create(meta()).unwrap();
        s.append_message(&ChatMessage::user("hello world")).unwrap();
        s.append_message(&ChatMessage::assistant("hi")).unwrap();
        let id = s.id().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(s.path().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(s);
        let back = store.open(&id).unwrap();
        assert!(back.is_resumed());
        assert_eq!(back.messages().len(), 2);
        assert_eq!(back.header().model, "m");
        assert!(back.warnings().is_empty());
        drop(back);
        let last = store.open("last").unwrap();
        assert_eq!(last.id(), id);
        drop(last);
        let prefix = store.open(&id[..10]).unwrap();
        assert_eq!(prefix.id(), id);
        drop(prefix);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].title.as_deref(), Some("hello world"));
        assert_eq!(list[0].messages, 2);
        store.remove(&id).unwrap();
        assert!(matches!(
            store.open("last"),
            Err(SessionError::NoSessions { .. })
        ));
        assert!(matches!(
            store.open("zzz"),
            Err(SessionError::NotFound { .. })
        ));
        assert!(matches!(
            store.open("../x"),
            Err(SessionError::InvalidId { .. })
        ));
    }

    #[test]
    fn partial_last_line_is_dropped_with_warning_and_file_stays_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut s = store.create(meta()).unwrap();
        s.append_message(&ChatMessage::user("one")).unwrap();
        s.append_message(&ChatMessage::assistant("two")).unwrap();
        let path = s.path().unwrap().to_owned();
        let id = s.id().to_owned();
        drop(s);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 7).unwrap(); // cut into the last record
        drop(f);
        let mut s = store.open(&id).unwrap();
        assert_eq!(s.messages().len(), 1);
        assert_eq!(s.warnings().len(), 1, "{:?}", s.warnings());
        assert!(s.warnings()[0].contains("partly written"));
        s.append_message(&ChatMessage::assistant("again")).unwrap();
        drop(s);
        let s = store.open(&id).unwrap();
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
        assert_eq!(s.messages()[1].content, "again");
    }

    #[test]
    fn dangling_tool_calls_are_answered_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut s = store.create(meta()).unwrap();
        s.append_message(&ChatMessage::user("go")).unwrap();
        let calls = vec![
            ToolCall {
                id: "a".into(),
                name: "read_file".into(),
                arguments: json!({}),
            },
            ToolCall {
                id: "b".into(),
                name: "shell".into(),
                arguments: json!({}),
            },
        ];
        s.append_message(&ChatMessage::assistant_with_tool_calls("", calls))
            .unwrap();
        s.append_message(&ChatMessage::tool_result("a", "read_file", "ok"))
            .unwrap();
        let id = s.id().to_owned();
        drop(s);
        let s = store.open(&id).unwrap();
        assert_eq!(s.messages().len(), 4);
        assert_eq!(s.messages()[3].tool_call_id.as_deref(), Some("b"));
        let note = &s.messages()[3].content;
        assert!(note.contains("interrupted: nanna exited"), "{note}");
        assert!(!note.contains("cancelled by the user"), "{note}");
        drop(s);
        let s = store.open(&id).unwrap();
        assert_eq!(s.messages().len(), 4, "repair was persisted once");
        assert!(s.warnings().is_empty());
    }

    #[test]
    fn compaction_records_replay() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut s = store.create(meta()).unwrap();
        for i in 0..4 {
            s.append_message(&ChatMessage::user(format!("u{i}")))
                .unwrap();
        }
        let usage = StoredUsage {
            messages: 4,
            prompt_tokens: 321,
            fingerprint: "f".into(),
            model: "m".into(),
            calibration: Calibration {
                ratio: 0.8,
                whole_prompt: true,
            },
            stale: false,
        };
        s.append_usage(&usage).unwrap();
        s.append_compaction(
            CompactionStep::Summarize,
            &[ChatMessage::user("SUMMARY"), ChatMessage::user("u3")],
            100,
            10,
        )
        .unwrap();
        s.append_message(&ChatMessage::assistant("a")).unwrap();
        let id = s.id().to_owned();
        drop(s);
        let s = store.open(&id).unwrap();
        let texts: Vec<&str> = s.messages().iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["SUMMARY", "u3", "a"]);
        assert_eq!(store.list().unwrap()[0].title.as_deref(), Some("u0"));
        let stored = s.stored_usage().unwrap();
        assert!(stored.stale, "the count predates the compaction");
        assert_eq!(stored.calibration, usage.calibration);
        drop(s);
        let mut s = store.open(&id).unwrap();
        s.append_usage(&usage).unwrap();
        drop(s);
        let s = store.open(&id).unwrap();
        assert_eq!(s.stored_usage(), Some(&usage));
    }

    /// Sessions written before the compaction ladder replaced a prefix by one message.
    #[test]
    fn legacy_compaction_records_replay() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let s = store.create(meta()).unwrap();
        let path = s.path().unwrap().to_owned();
        drop(s);
        let mut text = std::fs::read_to_string(&path).unwrap();
        for i in 0..4 {
            text.push_str(&format!(
                "{{\"type\":\"message\",\"message\":{{\"role\":\"user\",\"content\":\"u{i}\"}}}}\n"
            ));
        }
        text.push_str("{\"type\":\"compaction\",\"content\":\"SUMMARY\",\"summarized\":3,\"tokens_before\":100,\"tokens_after\":10}\n");
        std::fs::write(&path, text).unwrap();
        let s = store.open("last").unwrap();
        let texts: Vec<&str> = s.messages().iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["SUMMARY", "u3"]);
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    }

    #[test]
    fn ambiguous_prefixes_and_listing_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let a = store.create(meta()).unwrap().id().to_owned();
        let b = store.create(meta()).unwrap().id().to_owned();
        assert_ne!(a, b);
        assert!(matches!(
            store.open("20"),
            Err(SessionError::Ambiguous { .. })
        ));
        let mut ids = vec![a, b];
        ids.sort();
        let listed: Vec<String> = store.list().unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, ids);
        assert_eq!(store.open("last").unwrap().id(), ids[1]);
        assert!(store.list().unwrap()[0].title.is_none());
    }

    #[test]
    fn not_a_session_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("20260101T000000-aaaa.jsonl"), "garbage\n").unwrap();
        let store = SessionStore::new(dir.path());
        assert!(matches!(
            store.open("last"),
            Err(SessionError::Corrupt { .. })
        ));
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn in_memory_sessions_write_nothing() {
        let mut s = Session::in_memory(meta());
        s.append_message(&ChatMessage::user("x")).unwrap();
        assert!(s.path().is_none());
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut first = store.create(meta()).unwrap();
        first.append_message(&ChatMessage::user("one")).unwrap();
        let id = first.id().to_owned();

        let error = store.open(&id).expect_err("locked");
        let pid = std::process::id();
        assert!(
            matches!(&error, SessionError::Locked { id: locked, pid: Some(p) } if *locked == id && *p == pid),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&id) && text.contains(&format!("pid {pid}")),
            "{text}"
        );
        assert!(text.contains("--session-read-only"), "{text}");
        assert!(matches!(
            store.remove(&id),
            Err(SessionError::Locked { .. })
        ));

        // A reader is not refused and writes nothing.
        let mut reader = store.open_read_only(&id).unwrap();
        assert!(!reader.is_saved());
        assert_eq!(reader.messages().len(), 1);
        reader
            .append_message(&ChatMessage::user("not saved"))
            .unwrap();

        drop(first);
        let mut second = store
            .open(&id)
            .expect("the lock went with the first writer");
        assert!(second.is_saved());
        second
            .append_message(&ChatMessage::assistant("two"))
            .unwrap();
        drop(second);
        let texts: Vec<String> = store
            .open(&id)
            .unwrap()
            .messages()
            .iter()
            .map(|m| m.content.clone())
            .collect();
        assert_eq!(texts, ["one", "two"]);
        store.remove(&id).unwrap();
        assert!(!dir.path().join(format!("{id}.lock")).exists());
    }

    #[test]
    fn read_only_open_repairs_in_memory_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut s = store.create(meta()).unwrap();
        s.append_message(&ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "a".into(),
                name: "read_file".into(),
                arguments: json!({}),
            }],
        ))
        .unwrap();
        let path = s.path().unwrap().to_owned();
        drop(s);
        let before = std::fs::read(&path).unwrap();
        let reader = store.open_read_only("last").unwrap();
        assert_eq!(reader.messages().len(), 2, "the dangling call is answered");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file is untouched"
        );
    }
}
