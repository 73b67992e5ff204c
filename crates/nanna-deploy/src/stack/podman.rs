//! Podman's own (libpod) API, for what the Docker-compatible API cannot do: pods, and CDI
//! devices (`nvidia.com/gpu=all`), which the compatible API silently drops.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::StackError;
use super::http::{Endpoint, encode_query, request};
use super::spec::{ContainerSpec, LABEL_STACK, MountSpec, PodSpec, RESTART_POLICY};
use crate::engine::Engine;

const API: &str = "/v4.0.0/libpod";
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where a libpod container goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement<'a> {
    /// On a user-defined network.
    Network(&'a str),
    /// In a pod.
    Pod(&'a str),
}

/// A pod as libpod lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PodSummary {
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Labels.
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// Status (`Running`, `Exited`...).
    #[serde(rename = "Status", default)]
    pub status: String,
}

/// A client of the libpod API on the engine's socket.
#[derive(Debug, Clone)]
pub(crate) struct Libpod {
    endpoint: Endpoint,
}

impl Libpod {
    /// A client for `engine` (a Podman engine reached on a unix socket or TCP).
    pub(crate) fn new(engine: &Engine) -> Result<Self, StackError> {
        let endpoint = Endpoint::parse(&engine.socket).ok_or_else(|| StackError::Api {
            action: "reach Podman's libpod API".to_string(),
            message: format!(
                "address {} is neither unix:// nor tcp://; point CONTAINER_HOST at Podman's unix socket",
                engine.socket
            ),
        })?;
        Ok(Self { endpoint })
    }

    async fn call(
        &self,
        action: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, StackError> {
        let body = body.map(|v| serde_json::to_vec(&v).unwrap_or_default());
        let (status, bytes) = request(
            &self.endpoint,
            method,
            &format!("{API}{path}"),
            body,
            TIMEOUT,
        )
        .await
        .map_err(|e| StackError::Api {
            action: action.to_string(),
            message: e.to_string(),
        })?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(StackError::Api {
                action: action.to_string(),
                message: libpod_message(status, &value),
            })
        }
    }

    /// Creates the pod; returns its id.
    pub(crate) async fn create_pod(&self, pod: &PodSpec) -> Result<String, StackError> {
        let action = format!("create pod {}", pod.name);
        let value = self
            .call(&action, Method::POST, "/pods/create", Some(pod_body(pod)))
            .await?;
        Ok(value
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// The pods labelled with stack `stack`.
    pub(crate) async fn list_pods(&self, stack: &str) -> Result<Vec<PodSummary>, StackError> {
        let filters = json!({ "label": [format!("{LABEL_STACK}={stack}")] }).to_string();
        let path = format!("/pods/json?filters={}", encode_query(&filters));
        let value = self.call("list pods", Method::GET, &path, None).await?;
        if value.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(value).map_err(|e| StackError::Api {
            action: "list pods".to_string(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Removes a pod and its containers.
    pub(crate) async fn remove_pod(&self, name: &str) -> Result<(), StackError> {
        let path = format!("/pods/{}?force=true", encode_query(name));
        match self
            .call(&format!("remove pod {name}"), Method::DELETE, &path, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(StackError::Api { message, .. }) if message.contains("no such pod") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a container from `spec`; returns its id.
    pub(crate) async fn create_container(
        &self,
        spec: &ContainerSpec,
        placement: Placement<'_>,
    ) -> Result<String, StackError> {
        let action = format!("create container {}", spec.name);
        let value = self
            .call(
                &action,
                Method::POST,
                "/containers/create",
                Some(container_body(spec, placement)),
            )
            .await?;
        Ok(value
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }
}

fn libpod_message(status: StatusCode, value: &Value) -> String {
    let text = value
        .get("message")
        .or_else(|| value.get("cause"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    format!("HTTP {}: {text}", status.as_u16())
}

fn port_mappings(ports: &[super::spec::PortSpec]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                json!({
                    "host_ip": p.host_ip,
                    "host_port": p.host_port,
                    "container_port": p.container_port,
                    "protocol": "tcp",
                })
            })
            .collect(),
    )
}

/// The body of `POST /libpod/pods/create`.
pub(crate) fn pod_body(pod: &PodSpec) -> Value {
    json!({
        "name": pod.name,
        "labels": pod.labels,
        "portmappings": port_mappings(&pod.ports),
    })
}

/// The body of `POST /libpod/containers/create` (a SpecGenerator).
pub(crate) fn container_body(spec: &ContainerSpec, placement: Placement<'_>) -> Value {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for mount in &spec.mounts {
        match mount {
            MountSpec::Volume { source, target } => {
                volumes.push(json!({ "Name": source, "Dest": target }));
            }
            MountSpec::Bind { source, target } => {
                mounts.push(json!({
                    "destination": target,
                    "type": "bind",
                    "source": source,
                    "options": ["rbind", "rw"],
                }));
            }
        }
    }
    let mut devices: Vec<Value> = spec
        .devices
        .iter()
        .map(|d| {
            json!({ "path": format!("{}:{}:{}", d.path_on_host, d.path_in_container, d.cgroup_permissions) })
        })
        .collect();
    devices.extend(spec.cdi_devices.iter().map(|cdi| json!({ "path": cdi })));
    let mut body = json!({
        "name": spec.name,
        "image": spec.image,
        "env": spec.env,
        "labels": spec.labels,
        "restart_policy": RESTART_POLICY,
        "volumes": volumes,
        "mounts": mounts,
        "devices": devices,
        "groups": spec.group_add,
    });
    if let Value::Object(map) = &mut body {
        match placement {
            Placement::Pod(pod) => {
                map.insert("pod".to_string(), json!(pod));
            }
            Placement::Network(network) => {
                map.insert("netns".to_string(), json!({ "nsmode": "bridge" }));
                map.insert(
                    "networks".to_string(),
                    json!({ network: { "aliases": spec.aliases } }),
                );
                map.insert("portmappings".to_string(), port_mappings(&spec.ports));
            }
        }
    }
    body
}
