//! The one mapping from a container's [`SecuritySpec`] (what `up` gives the engine: see
//! `bodies.rs`) to the export targets' vocabulary. Both functions take the spec apart field
//! by field, so a new kind of confinement in the spec fails to compile here until every
//! target says how it renders it.

use serde_json::{Map, Value, json};

use super::ExportError;
use crate::engine::EngineKind;
use crate::stack::spec::{ProcMount, SeccompProfile, SeccompSpec, SecuritySpec, sys_masked_paths};

/// `uid:gid` (or `uid`) as numbers; Kubernetes takes only numeric ids.
fn numeric_user(user: &str) -> Result<(i64, Option<i64>), ExportError> {
    let bad = || ExportError::User {
        user: user.to_string(),
    };
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (user, None),
    };
    let uid = uid.parse::<i64>().map_err(|_| bad())?;
    let gid = gid
        .map(|gid| gid.parse::<i64>().map_err(|_| bad()))
        .transpose()?;
    Ok((uid, gid))
}

/// A Kubernetes container's confinement: its `securityContext`, the tmpfs mounts (path,
/// options) the caller turns into memory-backed `emptyDir` volumes, and the seccomp
/// profile `up` would give it, which the manifests leave to the nodes (see below).
pub(super) struct KubernetesSecurity {
    /// The container's `securityContext`.
    pub context: Value,
    /// tmpfs mounts.
    pub tmpfs: Vec<(String, String)>,
    /// The profile `up` uses on Docker, when the spec has one.
    pub node_profile: Option<SeccompProfile>,
}

/// The Kubernetes form of `security`.
///
/// `no-new-privileges` is `allowPrivilegeEscalation: false` (the kubelet sets the same
/// `no_new_privs` bit); dropped capabilities keep their names without `CAP_`; a read-only
/// root stays read-only; a numeric user becomes `runAsUser`/`runAsGroup` and, when not
/// root, `runAsNonRoot`. `privileged: false` is stated because it is what `up` does.
///
/// Two settings of the assistant stay at the stricter default, so that `kubectl apply`
/// and `podman kube play` take the file on any node: its seccomp profile (a `Localhost`
/// profile is a file on each node; a pod naming one a node lacks does not start, and
/// `podman kube play` refuses it) and its unmasked `/proc` (`procMount: Unmasked` is
/// accepted only with `hostUsers: false`, i.e. user namespaces on the nodes). The pods run
/// with the runtime's default profile and masks; the assistant's command sandbox then
/// refuses `shell` with nanna's reason until the nodes provide both (the profile is
/// returned so the caller can say which).
pub(super) fn kubernetes(security: &SecuritySpec) -> Result<KubernetesSecurity, ExportError> {
    let SecuritySpec {
        cap_drop,
        no_new_privileges,
        read_only_rootfs,
        tmpfs,
        user,
        seccomp,
        proc_mount: _,
    } = security;
    let mut context = Map::new();
    context.insert("privileged".into(), json!(false));
    context.insert(
        "allowPrivilegeEscalation".into(),
        json!(!*no_new_privileges),
    );
    if !cap_drop.is_empty() {
        let drop: Vec<String> = cap_drop
            .iter()
            .map(|c| c.trim_start_matches("CAP_").to_string())
            .collect();
        context.insert("capabilities".into(), json!({ "drop": drop }));
    }
    context.insert("readOnlyRootFilesystem".into(), json!(*read_only_rootfs));
    if let Some(user) = user {
        let (uid, gid) = numeric_user(user)?;
        context.insert("runAsUser".into(), json!(uid));
        if let Some(gid) = gid {
            context.insert("runAsGroup".into(), json!(gid));
        }
        if uid != 0 {
            context.insert("runAsNonRoot".into(), json!(true));
        }
    }
    Ok(KubernetesSecurity {
        context: Value::Object(context),
        tmpfs: tmpfs.clone(),
        node_profile: match seccomp {
            SeccompSpec::EngineDefault => None,
            SeccompSpec::Profile(profile) => Some(profile.clone()),
        },
    })
}

/// The Compose service keys for the same confinement (`cap_drop`, `security_opt`,
/// `read_only`, `tmpfs`, `user`), as `docker run` / `podman run` would get them on
/// `engine`: a seccomp profile as `seccomp=FILE` (docker-compose reads the file and sends
/// its content, `compose/config/types.py` `SecurityOpt.parse`; `profile_path` names it);
/// an unmasked `/proc` as Podman's `unmask=/proc/*` plus `mask=` (podman-compose passes
/// them to `podman run`). Docker has no form for it that Compose can send: its CLI turns
/// `systempaths=unconfined` into empty masked paths, and the Engine API that
/// docker-compose calls refuses that option ("invalid --security-opt", measured with
/// docker-compose 1.29 on Docker 20.10); [`compose_unmask_lost`] says when this applies.
pub(super) fn compose(
    security: &SecuritySpec,
    engine: EngineKind,
    profile_path: &dyn Fn(&SeccompProfile) -> String,
) -> Map<String, Value> {
    let SecuritySpec {
        cap_drop,
        no_new_privileges,
        read_only_rootfs,
        tmpfs,
        user,
        seccomp,
        proc_mount,
    } = security;
    let mut keys = Map::new();
    if !cap_drop.is_empty() {
        keys.insert("cap_drop".into(), json!(cap_drop));
    }
    let mut options = Vec::new();
    if *no_new_privileges {
        options.push("no-new-privileges:true".to_string());
    }
    if let SeccompSpec::Profile(profile) = seccomp {
        options.push(format!("seccomp={}", profile_path(profile)));
    }
    if *proc_mount == ProcMount::Unmasked && engine == EngineKind::Podman {
        options.push("unmask=/proc/*".to_string());
        options.push(format!("mask={}", sys_masked_paths().join(":")));
    }
    if !options.is_empty() {
        keys.insert("security_opt".into(), json!(options));
    }
    keys.insert("read_only".into(), json!(*read_only_rootfs));
    if !tmpfs.is_empty() {
        let mounts: Vec<String> = tmpfs
            .iter()
            .map(|(path, options)| format!("{path}:{options}"))
            .collect();
        keys.insert("tmpfs".into(), json!(mounts));
    }
    if let Some(user) = user {
        keys.insert("user".into(), json!(user));
    }
    keys
}

/// Whether `security` asks for an unmasked `/proc` that a Compose file for `engine` cannot
/// carry (Docker's; see [`compose`]).
pub(super) fn compose_unmask_lost(security: &SecuritySpec, engine: EngineKind) -> bool {
    security.proc_mount == ProcMount::Unmasked && engine == EngineKind::Docker
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Service;

    fn spec(user: Option<&str>) -> SecuritySpec {
        SecuritySpec {
            tmpfs: vec![("/tmp".into(), "rw,size=1".into())],
            user: user.map(str::to_string),
            ..SecuritySpec::of(Service::Assistant, EngineKind::Docker, None)
        }
    }

    #[test]
    fn kubernetes_context_mirrors_the_spec() {
        let KubernetesSecurity {
            context,
            tmpfs,
            node_profile,
        } = kubernetes(&spec(Some("4242:4243"))).unwrap();
        assert_eq!(
            node_profile.map(|p| p.name).as_deref(),
            Some("nanna-assistant")
        );
        assert_eq!(context["allowPrivilegeEscalation"], false);
        assert_eq!(context["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(context["readOnlyRootFilesystem"], true);
        assert_eq!(context["runAsUser"], 4242);
        assert_eq!(context["runAsGroup"], 4243);
        assert_eq!(context["runAsNonRoot"], true);
        assert_eq!(tmpfs.len(), 1);
        let root = kubernetes(&spec(Some("0:0"))).unwrap().context;
        assert!(root.get("runAsNonRoot").is_none());
        assert!(matches!(
            kubernetes(&spec(Some("nanna"))),
            Err(ExportError::User { .. })
        ));
    }

    #[test]
    fn compose_keys_mirror_the_spec() {
        let path = |p: &SeccompProfile| format!("/d/{}.json", p.name);
        let keys = compose(&spec(None), EngineKind::Docker, &path);
        assert_eq!(
            keys["security_opt"],
            json!(["no-new-privileges:true", "seccomp=/d/nanna-assistant.json"])
        );
        assert_eq!(keys["tmpfs"], json!(["/tmp:rw,size=1"]));
        assert!(keys.get("user").is_none());
        assert!(compose_unmask_lost(&spec(None), EngineKind::Docker));
        let podman = SecuritySpec::of(Service::Assistant, EngineKind::Podman, None);
        let keys = compose(&podman, EngineKind::Podman, &path);
        assert_eq!(
            keys["security_opt"],
            json!([
                "no-new-privileges:true",
                "unmask=/proc/*",
                "mask=/sys/firmware:/sys/devices/virtual/powercap"
            ])
        );
    }
}
