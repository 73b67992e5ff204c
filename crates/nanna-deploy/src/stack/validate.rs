//! Input checks shared by every subcommand and by library callers: stack names, host
//! addresses and the workspace directory. The binary uses the same functions as clap value
//! parsers, so `down --name X` refuses exactly what `up --name X` refuses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::confinement;
use super::spec::{SpecError, StackSettings};
use crate::detect::Warning;

/// Longest stack name: object names (`nanna-<stack>-assistant`) stay well inside the
/// engines' limits.
pub const MAX_NAME_LEN: usize = 40;

/// Checks a stack name: 1 to 40 characters from `a-z`, `0-9`, `-`, `_`, starting with a
/// letter or digit (a subset of what both engines accept in object names).
pub fn stack_name(name: &str) -> Result<String, SpecError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(name.to_string())
    } else {
        Err(SpecError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Parses a host address to publish on: `ADDR:PORT` with a non-zero port (`[::1]:8080` for
/// IPv6). Port 0 would make the engine pick a port the stack cannot know to probe.
pub fn listen_address(text: &str) -> Result<SocketAddr, SpecError> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| SpecError::InvalidAddress {
        given: text.to_string(),
        reason: "expected ADDR:PORT, e.g. 127.0.0.1:11434 or [::1]:11434".to_string(),
    })?;
    check_listen(addr)?;
    Ok(addr)
}

/// Checks an address given as a value (library callers): the port must not be 0.
pub fn check_listen(addr: SocketAddr) -> Result<(), SpecError> {
    if addr.port() == 0 {
        return Err(SpecError::InvalidAddress {
            given: addr.to_string(),
            reason: "port 0 lets the engine pick any port, which the stack could not probe; give a port such as 11434".to_string(),
        });
    }
    Ok(())
}

/// Whether two published addresses collide: the same port on the same address, or on an
/// unspecified address (`0.0.0.0`, `::`), which takes the port on every address.
pub fn addresses_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Warnings for addresses reachable from other machines. Ollama has no authentication
/// (its FAQ, "How can I expose Ollama on my network?", only says to set `OLLAMA_HOST`), so
/// whoever reaches the port can run, pull and delete models. Docker's published ports
/// bypass ufw and firewalld input rules; Docker's documentation ("Packet filtering and
/// firewalls") restricts them in the `DOCKER-USER` chain, matching the original port with
/// conntrack.
pub fn exposure_warnings(settings: &StackSettings) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let restrict = |port: u16| {
        format!(
            "keep the default 127.0.0.1 and reach it through an SSH tunnel (`ssh -L {port}:127.0.0.1:{port} HOST`) or a reverse proxy that authenticates; or allow only your network with a firewall rule. With Docker, published ports bypass ufw/firewalld, so filter in the DOCKER-USER chain: `iptables -I DOCKER-USER -p tcp -m conntrack --ctorigdstport {port} ! -s 192.168.1.0/24 -j DROP` (your network in place of 192.168.1.0/24)"
        )
    };
    if !settings.listen.ip().is_loopback() {
        warnings.push(Warning {
            code: "listen_public",
            message: format!(
                "the model server listens on {}, which other machines can reach: Ollama has no authentication, so anyone who reaches it can run, pull and delete models",
                settings.listen
            ),
            fix: Some(restrict(settings.listen.port())),
        });
    }
    if settings.assistant && !settings.assistant_listen.ip().is_loopback() {
        warnings.push(Warning {
            code: "assistant_listen_public",
            message: format!(
                "the assistant's health endpoint listens on {}, which other machines can reach (it tells them where the model server is)",
                settings.assistant_listen
            ),
            fix: Some(restrict(settings.assistant_listen.port())),
        });
    }
    warnings
}

/// Checks the directory mounted at `/workspace` in the assistant without touching the
/// filesystem: absolute, and neither a system directory nor anything below a system tree
/// (`workspace` of `images/container-security.json`, which the NixOS module applies too)
/// nor the user's home (`home`) or a directory above it, which hold keys and credentials.
/// [`workspace`] resolves links first; this is the check the pure spec repeats.
pub fn workspace_path(path: &Path, home: Option<&Path>) -> Result<(), SpecError> {
    let refused = |reason: String| SpecError::Workspace {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_absolute() {
        return Err(refused("it must be an absolute path".to_string()));
    }
    let shown = path.display().to_string();
    let refused_places = confinement::workspace();
    if refused_places
        .refused
        .iter()
        .any(|dir| path == Path::new(dir))
    {
        return Err(refused(format!(
            "{shown} is a system directory; mounting it would give the assistant the whole of it"
        )));
    }
    if let Some(tree) = refused_places
        .refused_below
        .iter()
        .find(|tree| path.starts_with(tree))
    {
        return Err(refused(format!(
            "{shown} is inside {tree}, which belongs to the system"
        )));
    }
    if home.is_some_and(|home| path == home) {
        return Err(refused(format!(
            "{shown} is your home directory, which holds keys and credentials (~/.ssh, ~/.config)"
        )));
    }
    // A directory above the home gives the whole of it too (a home outside /home, e.g.
    // /data/alice with --workspace /data).
    if let Some(home) = home.filter(|home| home.starts_with(path)) {
        return Err(refused(format!(
            "{shown} holds your home directory {}, which holds keys and credentials \
             (~/.ssh, ~/.config)",
            home.display()
        )));
    }
    Ok(())
}

/// Resolves the workspace (symbolic links included, so a link to `/` is `/`), checks that
/// it is an existing directory, then applies [`workspace_path`]; returns the resolved path.
pub fn workspace(path: &Path, home: Option<&Path>) -> Result<PathBuf, SpecError> {
    let refused = |reason: String| SpecError::Workspace {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_absolute() {
        return Err(refused("it must be an absolute path".to_string()));
    }
    let real =
        std::fs::canonicalize(path).map_err(|e| refused(format!("it cannot be resolved ({e})")))?;
    if !real.is_dir() {
        return Err(refused("it is not a directory".to_string()));
    }
    let home = home.map(|home| std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf()));
    workspace_path(&real, home.as_deref()).map_err(|error| match error {
        SpecError::Workspace { reason, .. } => refused(reason),
        other => other,
    })?;
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(stack_name("nanna").is_ok());
        assert!(stack_name("t-1_a").is_ok());
        assert!(stack_name("").is_err());
        assert!(stack_name("-x").is_err());
        assert!(stack_name("Upper").is_err());
        assert!(stack_name("a/b").is_err());
        assert!(stack_name(&"a".repeat(41)).is_err());
    }

    #[test]
    fn addresses_need_a_port() {
        assert_eq!(
            listen_address("127.0.0.1:11434").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 11434))
        );
        assert!(listen_address("[::1]:8080").is_ok());
        let error = listen_address("127.0.0.1:0").unwrap_err();
        assert!(error.to_string().contains("port 0"), "{error}");
        assert!(listen_address("localhost").is_err());
        assert!(listen_address("127.0.0.1").is_err());
    }

    #[test]
    fn clashes_compare_address_and_port() {
        let at = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(addresses_clash(at("127.0.0.1:8080"), at("127.0.0.1:8080")));
        assert!(!addresses_clash(at("127.0.0.1:8080"), at("127.0.0.2:8080")));
        assert!(!addresses_clash(at("127.0.0.1:8080"), at("127.0.0.1:8081")));
        assert!(addresses_clash(at("0.0.0.0:8080"), at("127.0.0.2:8080")));
        assert!(addresses_clash(at("127.0.0.2:8080"), at("[::]:8080")));
    }

    #[test]
    fn system_directories_and_home_are_refused() {
        for dir in [
            "/",
            "/etc",
            "/usr",
            "/tmp",
            "/proc/self",
            "/dev",
            "/var/lib",
        ] {
            let error = workspace(Path::new(dir), None).unwrap_err();
            assert!(
                matches!(error, SpecError::Workspace { .. }),
                "{dir}: {error}"
            );
        }
        let home = tempfile::tempdir().unwrap();
        let project = home.path().join("project");
        std::fs::create_dir(&project).unwrap();
        assert!(workspace(home.path(), Some(home.path())).is_err());
        // Nor a directory above it (a home outside /home: /data/alice, --workspace /data).
        let alice = home.path().join("alice");
        std::fs::create_dir(&alice).unwrap();
        let error = workspace(home.path(), Some(&alice)).unwrap_err();
        assert!(error.to_string().contains("holds your home"), "{error}");
        assert_eq!(
            workspace(&project, Some(home.path())).unwrap(),
            std::fs::canonicalize(&project).unwrap()
        );
        // A link to / is /.
        let link = home.path().join("root-link");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(workspace(&link, None).is_err());
        assert!(workspace(Path::new("relative"), None).is_err());
        assert!(workspace(&home.path().join("missing"), None).is_err());
    }
}
