//! Podman's own (libpod) API, for what the Docker-compatible API cannot do: pods, and CDI
//! devices (`nvidia.com/gpu=all`), which the compatible API silently drops.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::StackError;
use super::bodies::{Placement, container_body, pod_body};
use super::spec::{ContainerSpec, LABEL_STACK, PodSpec};
use crate::engine::Engine;
use crate::engine::http_client::{self, Endpoint, HttpError, encode_query};

const API: &str = "/v4.0.0/libpod";
const TIMEOUT: Duration = Duration::from_secs(60);

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
    engine: String,
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
        Ok(Self {
            endpoint,
            engine: engine.socket.clone(),
        })
    }

    async fn call(
        &self,
        action: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), StackError> {
        let body = body.map(|v| serde_json::to_vec(&v).unwrap_or_default());
        let answer = http_client::request(
            &self.endpoint,
            method,
            &format!("{API}{path}"),
            body,
            TIMEOUT,
        )
        .await
        .map_err(|error| match error {
            HttpError::Connect { .. } | HttpError::Timeout { .. } => StackError::EngineGone {
                engine: "podman".to_string(),
                address: self.engine.clone(),
                action: action.to_string(),
                message: error.to_string(),
            },
            other => StackError::Api {
                action: action.to_string(),
                message: other.to_string(),
            },
        })?;
        let value: Value = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&answer.body).into_owned())
            })
        };
        Ok((answer.status, value))
    }

    async fn call_ok(
        &self,
        action: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, StackError> {
        let (status, value) = self.call(action, method, path, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(StackError::Api {
                action: action.to_string(),
                message: libpod_message(status, &value),
            })
        }
    }

    /// Creates the pod; a pod of that name labelled as `stack`'s counts as existing (a
    /// concurrent run made it).
    pub(crate) async fn create_pod(
        &self,
        pod: &PodSpec,
        stack: &str,
    ) -> Result<super::state::Created, StackError> {
        let action = format!("create pod {}", pod.name);
        let (status, value) = self
            .call(&action, Method::POST, "/pods/create", Some(pod_body(pod)))
            .await?;
        if status.is_success() {
            return Ok(super::state::Created::New);
        }
        if status == StatusCode::CONFLICT {
            let owner = self
                .list_pods(stack)
                .await?
                .into_iter()
                .any(|p| p.name == pod.name);
            return if owner {
                Ok(super::state::Created::Existing)
            } else {
                Err(StackError::NameTaken {
                    kind: "pod",
                    name: pod.name.clone(),
                })
            };
        }
        Err(StackError::Api {
            action,
            message: libpod_message(status, &value),
        })
    }

    /// The pods labelled with stack `stack`.
    pub(crate) async fn list_pods(&self, stack: &str) -> Result<Vec<PodSummary>, StackError> {
        let filters = json!({ "label": [format!("{LABEL_STACK}={stack}")] }).to_string();
        let path = format!("/pods/json?filters={}", encode_query(&filters));
        let value = self.call_ok("list pods", Method::GET, &path, None).await?;
        if value.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(value).map_err(|e| StackError::Api {
            action: "list pods".to_string(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// The host ports a pod publishes, as `host_ip:host_port->container_port/tcp`.
    pub(crate) async fn pod_ports(&self, name: &str) -> Result<Vec<(u16, String)>, StackError> {
        let path = format!("/pods/{}/json", encode_query(name));
        let value = self
            .call_ok(&format!("inspect pod {name}"), Method::GET, &path, None)
            .await?;
        let bindings = value
            .pointer("/InfraConfig/PortBindings")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut ports = Vec::new();
        for (port, list) in bindings {
            let container_port = port
                .split('/')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(0);
            for binding in list.as_array().into_iter().flatten() {
                let ip = binding.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let host = binding
                    .get("HostPort")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                ports.push((container_port, format!("{ip}:{host}->{port}")));
            }
        }
        Ok(ports)
    }

    /// Removes a pod and its containers.
    pub(crate) async fn remove_pod(&self, name: &str) -> Result<(), StackError> {
        let path = format!("/pods/{}?force=true", encode_query(name));
        match self
            .call_ok(&format!("remove pod {name}"), Method::DELETE, &path, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(StackError::Api { message, .. }) if message.contains("no such pod") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a container from `spec`: `Ok(true)` when created, `Ok(false)` when a
    /// container of that name exists already (the caller checks whose it is).
    pub(crate) async fn create_container(
        &self,
        spec: &ContainerSpec,
        placement: Placement<'_>,
    ) -> Result<bool, StackError> {
        let action = format!("create container {}", spec.name);
        let (status, value) = self
            .call(
                &action,
                Method::POST,
                "/containers/create",
                Some(container_body(spec, placement)),
            )
            .await?;
        // A taken name is 500 "that name is already in use" on Podman 4.3 (409 elsewhere).
        let message = libpod_message(status, &value);
        if status.is_success() {
            Ok(true)
        } else if status == StatusCode::CONFLICT || message.contains("already in use") {
            Ok(false)
        } else {
            Err(StackError::Api { action, message })
        }
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
