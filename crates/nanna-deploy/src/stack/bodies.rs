//! The desired stack rendered as engine requests: Docker Engine API `containers/create`
//! bodies and libpod `containers/create` (SpecGenerator) and `pods/create` bodies. Pure
//! functions of a [`StackSpec`]; other renderers (Compose, Kubernetes) belong beside these.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping as BollardDevice, DeviceRequest, EndpointSettings,
    HostConfig, Mount, MountType, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use serde_json::{Value, json};

use super::spec::{
    ContainerSpec, MountSpec, PodSpec, PortSpec, ProcMount, RESTART_POLICY, SeccompSpec,
    SecuritySpec, StackSpec, sys_masked_paths,
};

/// The Docker Engine API `containers/create` body for `spec` on `network` (empty: the
/// engine's default network).
pub fn docker_body(spec: &ContainerSpec, network: &str) -> ContainerCreateBody {
    let mut port_bindings = HashMap::new();
    let mut exposed = Vec::new();
    for port in &spec.ports {
        let key = format!("{}/tcp", port.container_port);
        exposed.push(key.clone());
        port_bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: Some(port.host_ip.clone()),
                host_port: Some(port.host_port.to_string()),
            }]),
        );
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Volume { source, target } => Mount {
                target: Some(target.clone()),
                source: Some(source.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            },
            MountSpec::Bind { source, target } => Mount {
                target: Some(target.clone()),
                source: Some(source.clone()),
                typ: Some(MountType::BIND),
                ..Default::default()
            },
        })
        .collect();
    let devices: Vec<BollardDevice> = spec
        .devices
        .iter()
        .map(|d| BollardDevice {
            path_on_host: Some(d.path_on_host.clone()),
            path_in_container: Some(d.path_in_container.clone()),
            cgroup_permissions: Some(d.cgroup_permissions.clone()),
        })
        .collect();
    let device_requests: Vec<DeviceRequest> = spec
        .device_requests
        .iter()
        .map(|r| DeviceRequest {
            driver: Some(r.driver.clone()),
            count: Some(r.count),
            capabilities: Some(r.capabilities.clone()),
            ..Default::default()
        })
        .collect();
    let security = &spec.security;
    let host_config = HostConfig {
        port_bindings: Some(port_bindings),
        mounts: Some(mounts),
        devices: Some(devices),
        device_requests: (!device_requests.is_empty()).then_some(device_requests),
        group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        network_mode: (!network.is_empty()).then(|| network.to_string()),
        cap_drop: (!security.cap_drop.is_empty()).then(|| security.cap_drop.clone()),
        security_opt: Some(docker_security_opt(security)).filter(|o| !o.is_empty()),
        // Docker fills its defaults in when these are absent (daemon/create.go); given, they
        // replace them.
        masked_paths: (security.proc_mount == ProcMount::Unmasked)
            .then(|| sys_masked_paths().to_vec()),
        readonly_paths: (security.proc_mount == ProcMount::Unmasked).then(Vec::new),
        readonly_rootfs: Some(security.read_only_rootfs),
        init: spec.init.then_some(true),
        tmpfs: (!security.tmpfs.is_empty()).then(|| security.tmpfs.iter().cloned().collect()),
        ..Default::default()
    };
    let networking_config = (!network.is_empty()).then(|| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.to_string(),
            EndpointSettings {
                aliases: Some(spec.aliases.clone()),
                ..Default::default()
            },
        )])),
    });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(exposed),
        user: security.user.clone(),
        stop_timeout: Some(i64::from(spec.stop_timeout)),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// `HostConfig.SecurityOpt`: `no-new-privileges` and the seccomp profile, given inline (the
/// `docker` CLI reads a `seccomp=FILE` and sends its content the same way).
fn docker_security_opt(security: &SecuritySpec) -> Vec<String> {
    let mut options = Vec::new();
    if security.no_new_privileges {
        options.push("no-new-privileges:true".to_string());
    }
    if let SeccompSpec::Profile(profile) = &security.seccomp {
        options.push(format!("seccomp={}", profile.json));
    }
    options
}

/// Where a libpod container goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement<'a> {
    /// On a user-defined network.
    Network(&'a str),
    /// In a pod.
    Pod(&'a str),
}

impl<'a> Placement<'a> {
    /// Where `stack`'s containers go.
    pub(crate) fn of(stack: &'a StackSpec) -> Self {
        match (&stack.pod, &stack.network) {
            (Some(pod), _) => Self::Pod(&pod.name),
            (None, Some(network)) => Self::Network(&network.name),
            (None, None) => Self::Network("podman"),
        }
    }
}

/// The libpod `containers/create` body (SpecGenerator) for `container` of `stack`: in its
/// pod, or on its network with aliases and published ports; CDI devices as `devices`.
pub fn libpod_create_body(stack: &StackSpec, container: &ContainerSpec) -> Value {
    container_body(container, Placement::of(stack))
}

/// The libpod `pods/create` body of the stack's pod, if it has one.
pub fn libpod_pod_body(stack: &StackSpec) -> Option<Value> {
    stack.pod.as_ref().map(pod_body)
}

fn port_mappings(ports: &[PortSpec]) -> Value {
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

/// The body of `POST /libpod/containers/create` (a SpecGenerator, Podman's
/// `pkg/specgen/specgen.go`).
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
    for (target, options) in &spec.security.tmpfs {
        mounts.push(json!({
            "destination": target,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": options.split(',').collect::<Vec<_>>(),
        }));
    }
    let mut devices: Vec<Value> = spec
        .devices
        .iter()
        .map(|d| {
            json!({ "path": format!("{}:{}:{}", d.path_on_host, d.path_in_container, d.cgroup_permissions) })
        })
        .collect();
    devices.extend(spec.cdi_devices.iter().map(|cdi| json!({ "path": cdi })));
    let security = &spec.security;
    let mut body = json!({
        "name": spec.name,
        "image": spec.image,
        "env": spec.env,
        "labels": spec.labels,
        "restart_policy": RESTART_POLICY,
        "stop_timeout": spec.stop_timeout,
        "volumes": volumes,
        "mounts": mounts,
        "devices": devices,
        "groups": spec.group_add,
        "cap_drop": security.cap_drop,
        "no_new_privileges": security.no_new_privileges,
        "read_only_filesystem": security.read_only_rootfs,
    });
    if spec.init
        && let Value::Object(map) = &mut body
    {
        map.insert("init".to_string(), json!(true));
    }
    if let Value::Object(map) = &mut body {
        if let Some(user) = &security.user {
            map.insert("user".to_string(), json!(user));
        }
        if security.proc_mount == ProcMount::Unmasked {
            // Podman matches each default masked and read-only path against these globs
            // (`shouldMask` in pkg/specgen/generate/config_linux.go); `mask` adds paths.
            map.insert("unmask".to_string(), json!(["/proc/*"]));
            map.insert("mask".to_string(), json!(sys_masked_paths()));
        }
        if let SeccompSpec::Profile(profile) = &security.seccomp {
            // Podman reads a profile only from a file on the engine's host
            // (`getSeccompConfig` in pkg/specgen/generate/config_linux_seccomp.go): the
            // caller must place `<name>.json` there. `desired` gives Podman its default
            // profile, which allows what the assistant needs, so nothing here writes one.
            map.insert(
                "seccomp_profile_path".to_string(),
                json!(format!("{}.json", profile.name)),
            );
        }
        if security.read_only_rootfs {
            // Podman would add its own tmpfs on /tmp, /var/tmp and /run; the stack says
            // exactly which paths stay writable, as on Docker.
            map.insert("read_write_tmpfs".to_string(), json!(false));
        }
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
