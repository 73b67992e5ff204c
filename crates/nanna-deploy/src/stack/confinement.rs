//! The confinement table, `images/container-security.json`: how each service's container
//! is confined (capabilities, `no-new-privileges`, root filesystem and tmpfs, `HOME`, init,
//! user, seccomp profile per engine, `/proc`). The same file is read by Nix
//! (`images/lib.nix`), whose NixOS module renders it as `podman run` / `docker run` flags,
//! so `up`, `export` and NixOS hosts run the same containers. [`SecuritySpec`] and
//! [`ContainerSpec`](super::spec::ContainerSpec)'s `init` are built from it; why each value
//! is what it is: crates/nanna-deploy/README.md ("The deployed containers", "The
//! assistant's sandbox").

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::spec::{
    ASSISTANT_SECCOMP_JSON, ProcMount, SeccompProfile, SeccompSpec, SecuritySpec, Service,
};
use crate::engine::EngineKind;

/// The table as embedded at build time.
const TABLE_JSON: &str = include_str!("../../../../images/container-security.json");

/// The profile files the table may name, with their content embedded at build time
/// (`include_str!` takes only literal paths, so a new profile is a line here too).
const PROFILES: &[(&str, &str)] = &[("assistant-seccomp.json", ASSISTANT_SECCOMP_JSON)];

/// Whose user a container runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum UserRule {
    /// The image's `User`.
    Image,
    /// The owner of the workspace, so that files written there belong to it; the image's
    /// user when the owner is root (never root).
    WorkspaceOwner,
}

/// A seccomp profile file beside the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRef {
    /// Short name, for files written for Compose or Kubernetes.
    name: String,
    /// File under `images/`, one of [`PROFILES`].
    file: String,
}

impl ProfileRef {
    /// The embedded content of `file`.
    fn json(&self) -> Option<&'static str> {
        PROFILES
            .iter()
            .find(|(file, _)| *file == self.file)
            .map(|(_, json)| *json)
    }

    fn load(&self) -> SeccompProfile {
        // `tests::table_is_valid`: every file the table names is embedded.
        let json = self.json().unwrap_or_else(|| {
            panic!(
                "images/container-security.json names {}, which is not embedded",
                self.file
            )
        });
        SeccompProfile::new(&self.name, json)
    }
}

/// A tmpfs mount.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tmpfs {
    path: String,
    options: String,
}

/// One service's row.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceConfinement {
    cap_drop: Vec<String>,
    no_new_privileges: bool,
    read_only_rootfs: bool,
    tmpfs: Vec<Tmpfs>,
    /// `HOME`, on a tmpfs when the root is read-only; `None` keeps the image's.
    pub home: Option<String>,
    /// Whether the engine's init runs as PID 1.
    pub init: bool,
    /// Whose user the container runs as.
    pub user: UserRule,
    /// Engines whose default seccomp profile is replaced, by name (`docker`).
    seccomp: BTreeMap<String, ProfileRef>,
    proc: ProcMount,
}

impl ServiceConfinement {
    /// The [`SecuritySpec`] of this service on `engine`; `workspace_owner` is `uid:gid` of
    /// the workspace's owner, used when the row says so and the owner is not root.
    pub(crate) fn security(
        &self,
        engine: EngineKind,
        workspace_owner: Option<(u32, u32)>,
    ) -> SecuritySpec {
        SecuritySpec {
            cap_drop: self.cap_drop.clone(),
            no_new_privileges: self.no_new_privileges,
            read_only_rootfs: self.read_only_rootfs,
            tmpfs: self
                .tmpfs
                .iter()
                .map(|t| (t.path.clone(), t.options.clone()))
                .collect(),
            user: match self.user {
                UserRule::Image => None,
                UserRule::WorkspaceOwner => workspace_owner
                    .filter(|(uid, _)| *uid != 0)
                    .map(|(uid, gid)| format!("{uid}:{gid}")),
            },
            seccomp: match self.seccomp.get(engine.as_str()) {
                None => SeccompSpec::EngineDefault,
                Some(profile) => SeccompSpec::Profile(profile.load()),
            },
            proc_mount: self.proc,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskedPath {
    path: String,
    #[allow(dead_code)]
    why: String,
    /// Whether the kernel creates it on every host (read by the NixOS module, which can
    /// mask only those on Docker).
    #[allow(dead_code)]
    on_every_host: bool,
}

/// Host directories never mounted as the assistant's workspace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkspaceRules {
    #[allow(dead_code)]
    about: String,
    /// Refused themselves (`/`, `/usr`, `/home`...).
    pub refused: Vec<String>,
    /// Nothing below these is a workspace (`/etc`, `/var/lib`...).
    pub refused_below: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)]
    about: String,
    sys_masked_paths: Vec<MaskedPath>,
    workspace: WorkspaceRules,
    services: BTreeMap<String, ServiceConfinement>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // The file is part of the build, not input: `tests::table_is_valid` proves it parses,
    // has a row per service and names only the embedded profile, so this cannot fail in a
    // tested build.
    serde_json::from_str(TABLE_JSON)
        .unwrap_or_else(|e| panic!("images/container-security.json is invalid: {e}"))
});

static SYS_MASKED_PATHS: LazyLock<Vec<String>> = LazyLock::new(|| {
    TABLE
        .sys_masked_paths
        .iter()
        .map(|m| m.path.clone())
        .collect()
});

/// The row of `service`.
pub(crate) fn of(service: Service) -> &'static ServiceConfinement {
    TABLE.services.get(service.as_str()).unwrap_or_else(|| {
        panic!(
            "images/container-security.json has no row for {}",
            service.as_str()
        )
    })
}

/// Where the assistant's workspace may not be.
pub(crate) fn workspace() -> &'static WorkspaceRules {
    &TABLE.workspace
}

/// `/sys` paths that stay masked when `/proc` is unmasked.
pub(crate) fn sys_masked_paths() -> &'static [String] {
    &SYS_MASKED_PATHS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_valid() {
        let table: Table = serde_json::from_str(TABLE_JSON).expect("parses");
        for service in [Service::Ollama, Service::Assistant] {
            assert!(table.services.contains_key(service.as_str()), "{service:?}");
        }
        assert_eq!(table.services.len(), 2, "a row per service, no other");
        for (name, row) in &table.services {
            for (engine, profile) in &row.seccomp {
                assert!(
                    ["podman", "docker"].contains(&engine.as_str()),
                    "{name}: unknown engine {engine}"
                );
                assert!(
                    profile.json().is_some(),
                    "{name}: {} is not embedded",
                    profile.file
                );
                assert!(
                    !profile.name.is_empty() && !profile.name.contains('/'),
                    "{name}: a profile name is a file name stem"
                );
            }
            // A read-only root leaves only the tmpfs mounts writable: HOME must be one.
            if let Some(home) = &row.home {
                assert!(
                    row.tmpfs.iter().any(|t| &t.path == home),
                    "{name}: HOME {home} is not a tmpfs"
                );
            }
            if row.read_only_rootfs {
                assert!(
                    row.home.is_some(),
                    "{name}: a read-only root needs a writable HOME"
                );
            }
            for t in &row.tmpfs {
                assert!(t.path.starts_with('/'), "{name}: {}", t.path);
                for needed in ["nosuid", "nodev"] {
                    assert!(
                        t.options.split(',').any(|o| o == needed),
                        "{name}: {} lacks {needed}",
                        t.path
                    );
                }
            }
            assert_eq!(
                row.cap_drop,
                ["ALL"],
                "{name}: every container drops all capabilities"
            );
            assert!(row.no_new_privileges, "{name}");
        }
        assert!(
            table
                .sys_masked_paths
                .iter()
                .all(|m| m.path.starts_with("/sys/")),
            "only /sys paths: everything under /proc is unmasked for bubblewrap"
        );
    }

    #[test]
    fn the_assistant_runs_as_the_workspace_owner_but_never_root() {
        let row = of(Service::Assistant);
        let user = |owner| row.security(EngineKind::Podman, owner).user;
        assert_eq!(user(Some((4242, 4243))).as_deref(), Some("4242:4243"));
        assert_eq!(user(Some((0, 0))), None, "root: the image's user");
        assert_eq!(user(None), None);
        let ollama = of(Service::Ollama).security(EngineKind::Docker, Some((4242, 4243)));
        assert_eq!(ollama.user, None, "the model server keeps the image's user");
        assert_eq!(ollama.seccomp, SeccompSpec::EngineDefault);
        // Docker's default profile refuses user namespaces to a container without
        // CAP_SYS_ADMIN, Podman's allows them (crates/nanna-deploy/README.md).
        match row.security(EngineKind::Docker, None).seccomp {
            SeccompSpec::Profile(p) => {
                assert_eq!(p.name, "nanna-assistant");
                assert_eq!(p.json, ASSISTANT_SECCOMP_JSON);
            }
            other => panic!("assistant on Docker: {other:?}"),
        }
        assert_eq!(
            row.security(EngineKind::Podman, None).seccomp,
            SeccompSpec::EngineDefault
        );
    }
}
