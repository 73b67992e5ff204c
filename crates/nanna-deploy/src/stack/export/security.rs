//! The one mapping from a container's [`SecuritySpec`] (what `up` gives the engine: see
//! `bodies.rs`) to the export targets' vocabulary. Both functions take the spec apart field
//! by field, so a new kind of confinement in the spec fails to compile here until every
//! target says how it renders it.

use serde_json::{Map, Value, json};

use super::ExportError;
use crate::stack::spec::SecuritySpec;

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

/// A Kubernetes container `securityContext`, and the tmpfs mounts (path, options) the
/// caller turns into memory-backed `emptyDir` volumes.
///
/// `no-new-privileges` is `allowPrivilegeEscalation: false` (the kubelet sets the same
/// `no_new_privs` bit); dropped capabilities keep their names without `CAP_`; a read-only
/// root stays read-only; a numeric user becomes `runAsUser`/`runAsGroup` and, when not
/// root, `runAsNonRoot`. `privileged: false` is stated because it is what `up` does.
pub(super) fn kubernetes(
    security: &SecuritySpec,
) -> Result<(Value, Vec<(String, String)>), ExportError> {
    let SecuritySpec {
        cap_drop,
        no_new_privileges,
        read_only_rootfs,
        tmpfs,
        user,
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
    Ok((Value::Object(context), tmpfs.clone()))
}

/// The Compose service keys for the same confinement (`cap_drop`, `security_opt`,
/// `read_only`, `tmpfs`, `user`), as `docker run` would get them.
pub(super) fn compose(security: &SecuritySpec) -> Map<String, Value> {
    let SecuritySpec {
        cap_drop,
        no_new_privileges,
        read_only_rootfs,
        tmpfs,
        user,
    } = security;
    let mut keys = Map::new();
    if !cap_drop.is_empty() {
        keys.insert("cap_drop".into(), json!(cap_drop));
    }
    if *no_new_privileges {
        keys.insert("security_opt".into(), json!(["no-new-privileges:true"]));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: Option<&str>) -> SecuritySpec {
        SecuritySpec {
            cap_drop: vec!["ALL".into()],
            no_new_privileges: true,
            read_only_rootfs: true,
            tmpfs: vec![("/tmp".into(), "rw,size=1".into())],
            user: user.map(str::to_string),
        }
    }

    #[test]
    fn kubernetes_context_mirrors_the_spec() {
        let (context, tmpfs) = kubernetes(&spec(Some("4242:4243"))).unwrap();
        assert_eq!(context["allowPrivilegeEscalation"], false);
        assert_eq!(context["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(context["readOnlyRootFilesystem"], true);
        assert_eq!(context["runAsUser"], 4242);
        assert_eq!(context["runAsGroup"], 4243);
        assert_eq!(context["runAsNonRoot"], true);
        assert_eq!(tmpfs.len(), 1);
        let (root, _) = kubernetes(&spec(Some("0:0"))).unwrap();
        assert!(root.get("runAsNonRoot").is_none());
        assert!(matches!(
            kubernetes(&spec(Some("nanna"))),
            Err(ExportError::User { .. })
        ));
    }

    #[test]
    fn compose_keys_mirror_the_spec() {
        let keys = compose(&spec(None));
        assert_eq!(keys["security_opt"], json!(["no-new-privileges:true"]));
        assert_eq!(keys["tmpfs"], json!(["/tmp:rw,size=1"]));
        assert!(keys.get("user").is_none());
    }
}
