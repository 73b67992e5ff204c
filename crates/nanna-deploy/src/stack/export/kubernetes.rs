//! The stack as Kubernetes manifests, one multi-document YAML file for `kubectl apply -f`:
//! a Namespace; the models PersistentVolumeClaim; the model server as a one-replica
//! Deployment with the Recreate strategy (two servers must not share the models volume),
//! as the Ollama Helm chart does it (otwld/ollama-helm `templates/deployment.yaml`,
//! `templates/pvc.yaml`, `values.yaml`: `updateStrategy.type: Recreate`, a
//! ReadWriteOnce claim of 30Gi mounted at `/root/.ollama`, probes on `/`, the GPU as a
//! resource limit with a matching toleration); its ClusterIP Service; a NetworkPolicy that
//! admits only the assistant and the model pull; the assistant as a Deployment pointed at
//! the Service; and the model pull as a Job.
//!
//! The same file plays on one machine with `podman kube play` (Podman 4.3, Debian 12): it
//! creates the Deployments (one pod each), the claim (as a volume `kube down` keeps) and the
//! memory `emptyDir` (as a disk volume named after it, removed with its pod), and skips the
//! other kinds (`pkg/domain/infra/
//! abi/play.go` logs "Kube kind ... not supported" for anything but Pod, Deployment,
//! PersistentVolumeClaim, ConfigMap and Secret). Podman ignores Services and resolves
//! another pod by its pod name, which it makes `<deployment>-pod-0` (`playKubeDeployment`;
//! Podman >= 4.5 also resolves container names, podman#17412). So the model server's
//! Service and container carry that name, and the assistant's URL works under both.
//! Podman turns a liveness probe into a health check run with `/bin/sh -c` inside the
//! container, restarting it on failure (`pkg/specgen/generate/kube/kube.go`
//! `probeToHealthConfig`: an HTTP probe becomes `curl`, which Ollama's image lacks): the
//! liveness probe is the model server's own CLI (`ollama list`), which both run.

use serde_json::{Value, json};

use super::security;
use super::{ExportError, yaml};
use crate::stack::probe::{health_path, in_container_check};
use crate::stack::spec::{
    self, ContainerSpec, MountSpec, OLLAMA_PORT, Service, StackSettings, StackSpec, group_name,
};

/// What Podman's `kube play` appends to a Deployment's name to name its pod.
const PODMAN_POD_SUFFIX: &str = "-pod-0";
/// Size of the models claim (the Helm chart's `persistentVolume.size`).
const MODELS_CLAIM_SIZE: &str = "30Gi";
/// How often the model pull is retried while the server is not up yet.
const PULL_BACKOFF_LIMIT: u32 = 10;

/// The name the model server answers to, in Kubernetes (its Service) and under Podman (its
/// pod).
pub(super) fn model_server_host(spec: &StackSpec) -> String {
    format!(
        "{}{PODMAN_POD_SUFFIX}",
        spec::container_name(&spec.stack, Service::Ollama)
    )
}

fn component(service: Service) -> &'static str {
    match service {
        Service::Ollama => "model-server",
        Service::Assistant => "assistant",
    }
}

fn app_name(service: Service) -> &'static str {
    match service {
        Service::Ollama => "ollama",
        Service::Assistant => "nanna",
    }
}

/// Kubernetes' recommended labels (`app.kubernetes.io/*`, "Recommended Labels" in the
/// Kubernetes docs).
fn labels(stack: &str, name: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": stack,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "nanna-coder",
        "app.kubernetes.io/managed-by": "nanna-deploy",
    })
}

/// The labels a selector matches (the immutable part).
fn selector(stack: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/instance": stack,
        "app.kubernetes.io/component": component,
    })
}

fn metadata(name: &str, namespace: &str, labels: &Value) -> Value {
    json!({ "name": name, "namespace": namespace, "labels": labels })
}

/// `size=268435456` in tmpfs options as a quantity (`256Mi`).
fn tmpfs_size(options: &str) -> Option<String> {
    let bytes: u64 = options
        .split(',')
        .find_map(|o| o.strip_prefix("size="))?
        .parse()
        .ok()?;
    const MI: u64 = 1024 * 1024;
    Some(if bytes.is_multiple_of(MI) {
        format!("{}Mi", bytes / MI)
    } else {
        bytes.to_string()
    })
}

/// A pod volume name from a mount path (`/workspace` -> `workspace`).
fn volume_name(prefix: &str, path: &str) -> String {
    let word: String = path
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let word = word.trim_matches('-');
    if word.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}-{word}")
    }
}

/// The pod template of one service: its container with probes, confinement, GPU and mounts.
fn pod_template(
    spec: &StackSpec,
    c: &ContainerSpec,
    env: &[(String, String)],
) -> Result<Value, ExportError> {
    let stack = spec.stack.as_str();
    let recipe = c.gpu.recipe();
    let security::KubernetesSecurity {
        context: security_context,
        tmpfs,
        node_profile: _,
    } = security::kubernetes(&c.security)?;
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for mount in &c.mounts {
        match mount {
            MountSpec::Volume { source, target } => {
                volumes.push(
                    json!({ "name": source, "persistentVolumeClaim": { "claimName": source } }),
                );
                mounts.push(json!({ "name": source, "mountPath": target }));
            }
            MountSpec::Bind { source, target } => {
                // The project directory of the machine the pod runs on (one node, or
                // `podman kube play`); on a cluster, replace it with your own volume.
                let name = volume_name("host", target);
                volumes.push(
                    json!({ "name": name, "hostPath": { "path": source, "type": "Directory" } }),
                );
                mounts.push(json!({ "name": name, "mountPath": target }));
            }
        }
    }
    for (i, (path, options)) in tmpfs.iter().enumerate() {
        // Named after the container: Podman 4.3 makes an emptyDir a volume of that name.
        let name = format!("{}-tmp{i}", c.name);
        let mut empty_dir = json!({ "medium": "Memory" });
        if let Some(size) = tmpfs_size(options) {
            empty_dir["sizeLimit"] = json!(size);
        }
        volumes.push(json!({ "name": name, "emptyDir": empty_dir }));
        mounts.push(json!({ "name": name, "mountPath": path }));
    }
    let port = c.ports.first().map_or(OLLAMA_PORT, |p| p.container_port);
    let mut container = json!({
        "name": match c.service {
            Service::Ollama => model_server_host(spec),
            Service::Assistant => c.service.as_str().to_string(),
        },
        "image": c.image,
        // `up` pulls only absent images; images built on the host (the assistant's) exist
        // nowhere else.
        "imagePullPolicy": "IfNotPresent",
        "ports": [{ "name": "http", "containerPort": port, "protocol": "TCP" }],
        "env": env.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect::<Vec<_>>(),
    });
    if let Some(resource) = &recipe.kubernetes.resource {
        container["resources"] = json!({ "limits": { resource: 1 } });
    }
    // `up`'s health check: HTTP 200 from the service's health path (`probe.rs`).
    container["readinessProbe"] = json!({
        "httpGet": { "path": health_path(c.service), "port": "http" },
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 6,
    });
    if c.service == Service::Ollama {
        // The Helm chart's liveness timings; the check runs in the container (see above).
        container["livenessProbe"] = json!({
            "exec": { "command": in_container_check(Service::Ollama) },
            "initialDelaySeconds": 60,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        });
    }
    container["securityContext"] = security_context;
    container["volumeMounts"] = json!(mounts);

    let mut pod = json!({
        // The pods talk to the model server only; they need neither API credentials nor
        // the environment variables Kubernetes adds for every Service.
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
        "terminationGracePeriodSeconds": c.stop_timeout,
    });
    if c.init {
        // `up`'s init process (reaping what `nanna` leaves): in a pod, the pause container
        // as PID 1 of a shared PID namespace reaps.
        pod["shareProcessNamespace"] = json!(true);
    }
    if let Some(class) = &recipe.kubernetes.runtime_class {
        pod["runtimeClassName"] = json!(class);
    }
    if let Some(resource) = &recipe.kubernetes.resource {
        // GPU nodes are often tainted with the resource's name (the Helm chart tolerates it).
        pod["tolerations"] =
            json!([{ "key": resource, "operator": "Exists", "effect": "NoSchedule" }]);
    }
    pod["containers"] = json!([container]);
    pod["volumes"] = json!(volumes);
    Ok(json!({
        "metadata": { "labels": labels(stack, app_name(c.service), component(c.service)) },
        "spec": pod,
    }))
}

fn deployment(
    spec: &StackSpec,
    c: &ContainerSpec,
    namespace: &str,
    env: &[(String, String)],
) -> Result<Value, ExportError> {
    let stack = spec.stack.as_str();
    let labels = labels(stack, app_name(c.service), component(c.service));
    Ok(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&c.name, namespace, &labels),
        "spec": {
            "replicas": 1,
            // One writer of the models volume (Ollama) and of the workspace (the assistant).
            "strategy": { "type": "Recreate" },
            "selector": { "matchLabels": selector(stack, component(c.service)) },
            "template": pod_template(spec, c, env)?,
        },
    }))
}

/// The header: what the file is and what each consumer does with it.
fn header(spec: &StackSpec) -> Result<String, ExportError> {
    let host = model_server_host(spec);
    let mut sandbox = String::new();
    for c in &spec.services {
        if let Some(profile) = security::kubernetes(&c.security)?.node_profile {
            sandbox.push_str(&format!(
                "# The {service}'s command sandbox (bubblewrap) needs what `up` gives it and these\n\
                 # manifests leave to the nodes: the seccomp profile images/assistant-seccomp.json\n\
                 # installed as a Localhost profile ({name}.json) and user namespaces for an\n\
                 # unmasked /proc. Without them `shell` is refused in it, with the reason.\n",
                service = c.service.as_str(),
                name = profile.name
            ));
        }
    }
    Ok(format!(
        "# Nanna Coder stack {stack:?} for Kubernetes, written by `nanna-deploy export --format kubernetes`.\n\
         #   kubectl apply -f kubernetes.yaml     (then: kubectl -n {ns} port-forward svc/{host} 11434)\n\
         #   podman kube play kubernetes.yaml     (one machine; Podman skips the Namespace, Service,\n\
         #                                         NetworkPolicy and Job kinds)\n\
         # The model server answers at http://{host}:{OLLAMA_PORT}: its Service in Kubernetes, its pod\n\
         # as `podman kube play` names it. The model pull is a Job; under Podman pull with\n\
         #   podman exec {host}-{host} /bin/ollama pull MODEL\n{sandbox}",
        stack = spec.stack,
        ns = group_name(&spec.stack),
    ))
}

/// Renders the manifests.
pub(super) fn render(spec: &StackSpec, settings: &StackSettings) -> Result<String, ExportError> {
    let stack = spec.stack.as_str();
    let namespace = group_name(stack);
    let host = model_server_host(spec);
    let url = format!("http://{host}:{OLLAMA_PORT}");
    let mut docs = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": namespace, "labels": labels(stack, "nanna-coder", "stack") },
    })];
    docs.push(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(&spec.volume.name, &namespace, &labels(stack, "ollama", "models")),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": MODELS_CLAIM_SIZE } },
        },
    }));
    let mut clients = Vec::new();
    for c in &spec.services {
        // The model server's address is the target's: the assistant's URL points at the
        // Service (the spec's points at `up`'s container name).
        let env: Vec<(String, String)> = c
            .env
            .iter()
            .map(|(k, v)| {
                let v = if c.service == Service::Assistant && k == "OLLAMA_URL" {
                    url.clone()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        docs.push(deployment(spec, c, &namespace, &env)?);
        match c.service {
            Service::Ollama => {
                let labels = labels(stack, "ollama", component(Service::Ollama));
                docs.push(json!({
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": metadata(&host, &namespace, &labels),
                    "spec": {
                        "type": "ClusterIP",
                        "selector": selector(stack, component(Service::Ollama)),
                        "ports": [{ "name": "http", "port": OLLAMA_PORT, "targetPort": "http", "protocol": "TCP" }],
                    },
                }));
            }
            Service::Assistant => clients.push("assistant"),
        }
    }
    let ollama = spec.service(Service::Ollama);
    if let (Some(model), Some(ollama)) = (&settings.model, ollama) {
        clients.push("model-pull");
        let labels = labels(stack, "ollama", "model-pull");
        let security_context = security::kubernetes(&ollama.security)?.context;
        let mut command = vec!["/bin/ollama".to_string(), "pull".to_string()];
        command.push(model.clone());
        docs.push(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata(&format!("nanna-{stack}-pull"), &namespace, &labels),
            "spec": {
                // Retried (with Kubernetes' growing back-off) until the server answers.
                "backoffLimit": PULL_BACKOFF_LIMIT,
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": false,
                        "enableServiceLinks": false,
                        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
                        "containers": [{
                            "name": "pull",
                            "image": ollama.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": command,
                            "env": [{ "name": "OLLAMA_HOST", "value": url }],
                            "securityContext": security_context,
                        }],
                    },
                },
            },
        }));
    }
    if ollama.is_some() {
        let ingress = if clients.is_empty() {
            json!([])
        } else {
            json!([{
                "from": [{ "podSelector": { "matchExpressions": [
                    { "key": "app.kubernetes.io/instance", "operator": "In", "values": [stack] },
                    { "key": "app.kubernetes.io/component", "operator": "In", "values": clients },
                ] } }],
                "ports": [{ "protocol": "TCP", "port": OLLAMA_PORT }],
            }])
        };
        // Only the stack's own clients reach the model server (Ollama has no
        // authentication); `kubectl port-forward` still works (it enters the pod directly).
        docs.insert(
            4.min(docs.len()),
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": metadata(
                    &spec::container_name(stack, Service::Ollama),
                    &namespace,
                    &labels(stack, "ollama", component(Service::Ollama)),
                ),
                "spec": {
                    "podSelector": { "matchLabels": selector(stack, component(Service::Ollama)) },
                    "policyTypes": ["Ingress"],
                    "ingress": ingress,
                },
            }),
        );
    }
    let mut out = header(spec)?;
    for doc in &docs {
        out.push_str("---\n");
        out.push_str(&yaml(doc)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_volume_names() {
        assert_eq!(
            tmpfs_size("rw,nosuid,size=268435456,mode=1777").as_deref(),
            Some("256Mi")
        );
        assert_eq!(tmpfs_size("rw").as_deref(), None);
        assert_eq!(volume_name("host", "/workspace"), "host-workspace");
        assert_eq!(volume_name("host", "/"), "host");
    }
}
