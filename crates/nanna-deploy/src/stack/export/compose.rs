//! The stack as a Compose file (the Compose Specification, as Debian's `docker-compose`
//! 1.29 and `podman-compose` 1.0.3 read it): the same two services as `up` with their
//! images, environment, published ports, mounts, GPU plumbing, confinement, restart policy,
//! stop grace and health checks, the models volume, and a one-shot `model-pull` service.
//!
//! GPUs: device mappings and groups as `devices`/`group_add`; NVIDIA as a device
//! reservation (`deploy.resources.reservations.devices`, which docker-compose turns into
//! the same device request as `docker run --gpus all`) for Docker, and as the CDI device
//! in `devices` for Podman, whose Docker API ignores device requests (podman#22645).
//! Health checks run inside the containers ([`in_container_check`]), since Compose cannot
//! probe from the host as `up` does. The model server is reached by its service name.

use serde_json::{Map, Value, json};

use super::security;
use super::{ExportError, yaml};
use crate::stack::probe::in_container_check;
use crate::stack::spec::{
    ContainerSpec, MountSpec, RESTART_POLICY, Service, StackSettings, StackSpec,
};

fn port(p: &crate::stack::spec::PortSpec) -> String {
    let ip = if p.host_ip.contains(':') {
        format!("[{}]", p.host_ip)
    } else {
        p.host_ip.clone()
    };
    format!("{ip}:{}:{}", p.host_port, p.container_port)
}

fn healthcheck(service: Service) -> Value {
    let mut test = vec!["CMD".to_string()];
    test.extend(in_container_check(service));
    json!({
        "test": test,
        "interval": "5s",
        "timeout": "3s",
        "retries": 6,
        "start_period": match service {
            Service::Ollama => "60s",
            Service::Assistant => "10s",
        },
    })
}

fn service(c: &ContainerSpec) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("image".into(), json!(c.image));
    s.insert("restart".into(), json!(RESTART_POLICY));
    s.insert(
        "stop_grace_period".into(),
        json!(format!("{}s", c.stop_timeout)),
    );
    s.insert("environment".into(), json!(c.env));
    if !c.ports.is_empty() {
        s.insert(
            "ports".into(),
            json!(c.ports.iter().map(port).collect::<Vec<_>>()),
        );
    }
    let volumes: Vec<Value> = c
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Volume { target, .. } => {
                json!({ "type": "volume", "source": "models", "target": target })
            }
            MountSpec::Bind { source, target } => {
                json!({ "type": "bind", "source": source, "target": target })
            }
        })
        .collect();
    s.insert("volumes".into(), json!(volumes));
    let mut devices: Vec<String> = c
        .devices
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}",
                d.path_on_host, d.path_in_container, d.cgroup_permissions
            )
        })
        .collect();
    devices.extend(c.cdi_devices.iter().cloned());
    if !devices.is_empty() {
        s.insert("devices".into(), json!(devices));
    }
    if !c.group_add.is_empty() {
        s.insert("group_add".into(), json!(c.group_add));
    }
    if !c.device_requests.is_empty() {
        let reservations: Vec<Value> = c
            .device_requests
            .iter()
            .map(|r| {
                let count = if r.count < 0 {
                    json!("all")
                } else {
                    json!(r.count)
                };
                json!({
                    "driver": r.driver,
                    "count": count,
                    "capabilities": r.capabilities.first().cloned().unwrap_or_default(),
                })
            })
            .collect();
        s.insert(
            "deploy".into(),
            json!({ "resources": { "reservations": { "devices": reservations } } }),
        );
    }
    s.extend(security::compose(&c.security));
    s.insert("healthcheck".into(), healthcheck(c.service));
    s
}

/// Renders the Compose file.
pub(super) fn render(spec: &StackSpec, settings: &StackSettings) -> Result<String, ExportError> {
    // Compose names the containers itself (`<project>_ollama_1`); a service answers under
    // its name, which is also the network alias `up` gives the model server. The
    // per-network aliases that could carry `up`'s container name are refused by
    // podman-compose 1.0.3 (`assert_cnt_nets` takes only a list of network names).
    let ollama_url = spec.service(Service::Ollama).map(|c| {
        format!(
            "http://{}:{}",
            Service::Ollama.as_str(),
            c.ports.first().map_or(0, |p| p.container_port)
        )
    });
    let mut services = Map::new();
    for c in &spec.services {
        let mut s = service(c);
        if c.service == Service::Assistant {
            if let (Some(url), Some(Value::Object(env))) = (&ollama_url, s.get_mut("environment")) {
                env.insert("OLLAMA_URL".into(), json!(url));
            }
            s.insert(
                "depends_on".into(),
                json!({ "ollama": { "condition": "service_healthy" } }),
            );
        }
        services.insert(c.service.as_str().into(), Value::Object(s));
    }
    if let (Some(model), Some(ollama), Some(url)) =
        (&settings.model, spec.service(Service::Ollama), &ollama_url)
    {
        let mut s = Map::new();
        s.insert("image".into(), json!(ollama.image));
        s.insert("entrypoint".into(), json!(["/bin/ollama"]));
        s.insert("command".into(), json!(["pull", model]));
        s.insert("environment".into(), json!({ "OLLAMA_HOST": url }));
        // Once healthy; retried on failure (podman-compose does not wait for health).
        s.insert(
            "depends_on".into(),
            json!({ "ollama": { "condition": "service_healthy" } }),
        );
        s.insert("restart".into(), json!("on-failure"));
        s.extend(security::compose(&ollama.security));
        services.insert("model-pull".into(), Value::Object(s));
    }
    let file = json!({
        "services": services,
        "volumes": { "models": {} },
    });
    let header = format!(
        "# Nanna Coder stack {:?} for Compose, written by `nanna-deploy export --format compose`.\n\
         #   docker-compose -p nanna-{} -f compose.yaml up -d    (or podman-compose)\n",
        spec.stack, spec.stack
    );
    Ok(format!("{header}{}", yaml(&file)?))
}
