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

use std::path::Path;

use serde_json::{Map, Value, json};

use super::security;
use super::{ExportError, yaml};
use crate::engine::EngineKind;
use crate::stack::probe::in_container_check;
use crate::stack::spec::{
    ContainerSpec, MountSpec, RESTART_POLICY, SeccompProfile, SeccompSpec, Service, StackSettings,
    StackSpec,
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

fn service(
    c: &ContainerSpec,
    engine: EngineKind,
    profile_path: &dyn Fn(&SeccompProfile) -> String,
) -> Map<String, Value> {
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
    if c.init {
        s.insert("init".into(), json!(true));
    }
    s.extend(security::compose(&c.security, engine, profile_path));
    s.insert("healthcheck".into(), healthcheck(c.service));
    s
}

/// Renders the Compose file, and the seccomp profiles it refers to as files (name,
/// content), found in `profile_dir` (the directory the export is written to), else beside
/// the directory docker-compose runs in.
pub(super) fn render(
    spec: &StackSpec,
    settings: &StackSettings,
    profile_dir: Option<&Path>,
) -> Result<(String, Vec<(String, String)>), ExportError> {
    let mut files = Vec::new();
    let profile_path = |profile: &SeccompProfile| {
        let name = format!("{}.json", profile.name);
        match profile_dir {
            Some(dir) => dir.join(&name).display().to_string(),
            None => name,
        }
    };
    for c in &spec.services {
        if let SeccompSpec::Profile(profile) = &c.security.seccomp {
            let name = format!("{}.json", profile.name);
            if !files.iter().any(|(n, _)| n == &name) {
                files.push((name, profile.json.clone()));
            }
        }
    }
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
        let mut s = service(c, spec.engine, &profile_path);
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
        s.extend(security::compose(
            &ollama.security,
            spec.engine,
            &profile_path,
        ));
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
    let mut header = header;
    for c in &spec.services {
        if security::compose_unmask_lost(&c.security, spec.engine) {
            header.push_str(&format!(
                "# The {}'s /proc stays masked: Docker unmasks it only from its own CLI, which\n\
                 # docker-compose does not use, so its command sandbox refuses `shell` here (with\n\
                 # the reason); `nanna-deploy up` or podman-compose (--engine podman) give it one.\n",
                c.service.as_str()
            ));
        }
    }
    for (name, _) in &files {
        header.push_str(&format!(
            "# The assistant's seccomp profile (its command sandbox needs it) is {name}: written\n\
             # beside this file by -o DIR; on stdout, save images/assistant-seccomp.json there.\n"
        ));
    }
    Ok((format!("{header}{}", yaml(&file)?), files))
}
