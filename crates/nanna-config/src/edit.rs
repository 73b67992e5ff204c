//! `nanna mcp add` / `remove`: changing `[mcp_servers.NAME]` in the user's config file with
//! `toml_edit`, so the file's comments, order and other settings stay as they were, and
//! replacing the file atomically (a crash never leaves half a file).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Table, value};

use crate::mcp::valid_server_name;

/// A server to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewServer {
    /// `nanna mcp add NAME -- CMD ARGS...`
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// `--env KEY=VALUE` pairs.
        env: BTreeMap<String, String>,
    },
    /// `nanna mcp add NAME --url URL`
    StreamableHttp {
        /// The endpoint.
        url: String,
        /// `--bearer-token-env-var VAR`.
        bearer_token_env_var: Option<String>,
    },
}

/// What went wrong editing the file.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The name cannot be a server's.
    #[error(
        "`{0}` cannot name a server: use letters, digits, `_` and `-` (at most 48), since it \
         prefixes the server's tool names"
    )]
    BadName(String),
    /// No such server in the user's file.
    #[error("no server `{name}` in {}{hint}", path.display())]
    NotFound {
        /// The name.
        name: String,
        /// The user's file.
        path: PathBuf,
        /// Where it is defined instead, if anywhere.
        hint: String,
    },
    /// The file could not be read, parsed or written.
    #[error("{}: {detail}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
}

/// Adds (or replaces) `[mcp_servers.NAME]` in `path`, creating the file and its directory
/// when needed. Returns whether a server of that name was replaced.
pub fn add(path: &Path, name: &str, server: &NewServer) -> Result<bool, EditError> {
    if !valid_server_name(name) {
        return Err(EditError::BadName(name.to_owned()));
    }
    let mut doc = read(path)?;
    let servers = servers_table(&mut doc, path)?;
    let mut table = Table::new();
    match server {
        NewServer::Stdio { command, args, env } => {
            table.insert("command", value(command.as_str()));
            if !args.is_empty() {
                let mut list = Array::new();
                for arg in args {
                    list.push(arg.as_str());
                }
                table.insert("args", value(list));
            }
            if !env.is_empty() {
                let mut inline = toml_edit::InlineTable::new();
                for (k, v) in env {
                    inline.insert(k, v.as_str().into());
                }
                table.insert("env", value(inline));
            }
        }
        NewServer::StreamableHttp {
            url,
            bearer_token_env_var,
        } => {
            table.insert("url", value(url.as_str()));
            if let Some(var) = bearer_token_env_var {
                table.insert("bearer_token_env_var", value(var.as_str()));
            }
        }
    }
    let replaced = servers.insert(name, Item::Table(table)).is_some();
    write(path, &doc)?;
    Ok(replaced)
}

/// Removes `[mcp_servers.NAME]` from `path`. `system` is the system file, named in the error
/// when the server is defined there instead (it cannot be removed from the user's file, only
/// turned off with `enabled = false`).
pub fn remove(path: &Path, name: &str, system: Option<&Path>) -> Result<(), EditError> {
    let not_found = || {
        let in_system = system.is_some_and(|s| {
            std::fs::read_to_string(s)
                .ok()
                .and_then(|t| t.parse::<DocumentMut>().ok())
                .is_some_and(|d| d.get("mcp_servers").and_then(|m| m.get(name)).is_some())
        });
        let hint = match system {
            Some(s) if in_system => format!(
                "; it is defined in {}, which nanna does not edit: add `[mcp_servers.{name}]` \
                 with `enabled = false` to your file to turn it off",
                s.display()
            ),
            _ => String::new(),
        };
        EditError::NotFound {
            name: name.to_owned(),
            path: path.to_owned(),
            hint,
        }
    };
    if !path.exists() {
        return Err(not_found());
    }
    let mut doc = read(path)?;
    let removed = doc
        .get_mut("mcp_servers")
        .and_then(Item::as_table_like_mut)
        .and_then(|t| t.remove(name));
    if removed.is_none() {
        return Err(not_found());
    }
    if doc
        .get("mcp_servers")
        .and_then(Item::as_table_like)
        .is_some_and(|t| t.is_empty())
    {
        doc.remove("mcp_servers");
    }
    write(path, &doc)
}

fn read(path: &Path) -> Result<DocumentMut, EditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(EditError::File {
                path: path.to_owned(),
                detail: format!("cannot read it: {e}"),
            });
        }
    };
    text.parse::<DocumentMut>().map_err(|e| EditError::File {
        path: path.to_owned(),
        detail: format!(
            "not valid TOML, so it was left unchanged: {}",
            e.message().trim()
        ),
    })
}

fn servers_table<'a>(doc: &'a mut DocumentMut, path: &Path) -> Result<&'a mut Table, EditError> {
    let item = doc.entry("mcp_servers").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    item.as_table_mut().ok_or_else(|| EditError::File {
        path: path.to_owned(),
        detail: "`mcp_servers` is not a table; fix it by hand first".into(),
    })
}

/// Writes `doc` to a temporary file beside `path` and renames it over `path`, keeping the
/// old file's permissions.
fn write(path: &Path, doc: &DocumentMut) -> Result<(), EditError> {
    let fail = |detail: String| EditError::File {
        path: path.to_owned(),
        detail,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let mut tmp = tempfile_in(&dir).map_err(|e| fail(format!("cannot write beside it: {e}")))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp.1, meta.permissions());
    }
    let result = (|| {
        tmp.0.write_all(doc.to_string().as_bytes())?;
        tmp.0.sync_all()?;
        std::fs::rename(&tmp.1, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp.1);
        return Err(fail(format!("cannot write it: {e}")));
    }
    Ok(())
}

/// A new file in `dir` that no one else has open.
fn tempfile_in(dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(".config.toml.{}.{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "\
# My nanna settings.
model = \"qwen2.5-coder:7b\"   # the one that fits my GPU

# Servers I use every day.
[mcp_servers.docs]
url = \"http://127.0.0.1:3000/mcp\" # local docs
";

    #[test]
    fn add_keeps_comments_and_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, ORIGINAL).unwrap();
        let replaced = add(
            &path,
            "fs",
            &NewServer::Stdio {
                command: "npx".into(),
                args: vec![
                    "-y".into(),
                    "@modelcontextprotocol/server-filesystem".into(),
                    "/srv".into(),
                ],
                env: BTreeMap::from([("DEBUG".into(), "1".into())]),
            },
        )
        .unwrap();
        assert!(!replaced);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(ORIGINAL), "{text}");
        assert!(text.contains("[mcp_servers.fs]\ncommand = \"npx\"\nargs = [\"-y\", \"@modelcontextprotocol/server-filesystem\", \"/srv\"]\nenv = { DEBUG = \"1\" }\n"), "{text}");
        let config = crate::ConfigLoader::new()
            .user_file(path.clone())
            .load_mcp(&crate::Overrides::new())
            .unwrap();
        assert_eq!(config.servers.len(), 2);

        // Replacing keeps the rest too.
        let replaced = add(
            &path,
            "docs",
            &NewServer::StreamableHttp {
                url: "http://127.0.0.1:4000/mcp".into(),
                bearer_token_env_var: Some("DOCS_TOKEN".into()),
            },
        )
        .unwrap();
        assert!(replaced);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# My nanna settings."), "{text}");
        assert!(
            text.contains("bearer_token_env_var = \"DOCS_TOKEN\""),
            "{text}"
        );
        assert!(!text.contains("3000"), "{text}");
    }

    #[test]
    fn add_creates_the_file_and_remove_restores_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nanna/config.toml");
        add(
            &path,
            "x",
            &NewServer::Stdio {
                command: "srv".into(),
                args: vec![],
                env: BTreeMap::new(),
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[mcp_servers.x]\ncommand = \"srv\"\n"
        );
        remove(&path, "x", None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");

        std::fs::write(&path, ORIGINAL).unwrap();
        remove(&path, "docs", None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("model = \"qwen2.5-coder:7b\"   # the one that fits my GPU"),
            "{text}"
        );
        assert!(!text.contains("mcp_servers"), "{text}");
        // Nothing but the file itself is left in the directory.
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn mistakes_leave_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let stdio = NewServer::Stdio {
            command: "srv".into(),
            args: vec![],
            env: BTreeMap::new(),
        };
        assert!(matches!(
            add(&path, "a.b", &stdio),
            Err(EditError::BadName(_))
        ));
        assert!(!path.exists());

        std::fs::write(&path, "model = \n").unwrap();
        let err = add(&path, "ok", &stdio).unwrap_err().to_string();
        assert!(
            err.contains("not valid TOML, so it was left unchanged"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "model = \n");

        std::fs::write(&path, ORIGINAL).unwrap();
        let system = dir.path().join("system.toml");
        std::fs::write(&system, "[mcp_servers.sys]\ncommand = \"x\"\n").unwrap();
        let err = remove(&path, "sys", Some(&system)).unwrap_err().to_string();
        assert!(err.contains("enabled = false"), "{err}");
        let err = remove(&path, "nope", Some(&system))
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("no server `nope` in {}", path.display()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
    }
}
