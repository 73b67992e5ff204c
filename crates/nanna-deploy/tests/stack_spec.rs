//! The containers, pod and network the stack asks for, per GPU vendor × engine × layout, on
//! fixture hosts; the engine request bodies built from them; and plans against fake states.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::Docker;
use common::fixture::{Card, Fixture, GIB};
use nanna_deploy::engine::{Engine, EngineKind};
use nanna_deploy::host::{HostRoot, ProbeEnv, UserIdentity};
use nanna_deploy::stack::StackError;
use nanna_deploy::stack::bodies::{docker_body, libpod_create_body, libpod_pod_body};
use nanna_deploy::stack::desired;
use nanna_deploy::stack::plan::{Actual, ActualContainer, ActualNetwork, ActualPod, Step, plan};
use nanna_deploy::stack::spec::{
    ASSISTANT_SECCOMP_JSON, ExtraDevice, LABEL_HASH, LABEL_SERVICE, LABEL_STACK, Layout, MountSpec,
    ProcMount, SeccompSpec, Service, SpecError, StackSettings, StackSpec,
};
use nanna_deploy::{Accelerator, GpuChoice};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Host {
    NvidiaWithCdi,
    NvidiaNoCdi,
    Amd,
    Intel,
    Cpu,
}

fn fixture(host: Host) -> Fixture {
    let fx = Fixture::new();
    match host {
        Host::NvidiaWithCdi | Host::NvidiaNoCdi => {
            fx.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
            fx.nvidia_driver(1);
            fx.fake_nvidia_smi(&[
                "NVIDIA GeForce RTX 4090, 24564, GPU-aaaa-1111, 00000000:01:00.0",
            ]);
            if host == Host::NvidiaWithCdi {
                fx.nvidia_cdi("etc/cdi/nvidia.yaml");
            }
        }
        Host::Amd => {
            fx.card(
                Card::new(0, "0x1002", "0x744c", "0000:03:00.0")
                    .driver("amdgpu")
                    .vram(24 * GIB),
            );
            fx.kfd_node(0, 0, 0, 16, 0);
            fx.kfd_node(1, 110000, 128, 0, 192);
            fx.kfd();
        }
        Host::Intel => {
            fx.card(
                Card::new(0, "0x8086", "0x9a49", "0000:00:02.0")
                    .driver("i915")
                    .boot_vga(),
            );
        }
        Host::Cpu => {}
    }
    fx
}

fn env_for(fx: &Fixture) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::new(fx.root()));
    env.tool_path = Some(fx.bin().into_os_string());
    env.user = UserIdentity {
        uid: Some(0),
        name: Some("root".into()),
        gids: vec![0],
    };
    env
}

/// An engine handle that is never connected (specs are pure).
fn engine(kind: EngineKind) -> Engine {
    Engine {
        kind,
        socket: "unix:///nonexistent/engine.sock".to_string(),
        version: "test".to_string(),
        api_version: "1.41".to_string(),
        client: Docker::connect_with_http("http://127.0.0.1:9", 5, bollard::API_DEFAULT_VERSION)
            .unwrap(),
    }
}

fn settings(layout: Layout) -> StackSettings {
    let mut s = StackSettings::new("t1", PathBuf::from("/home/alice/project"));
    s.layout = layout;
    s
}

fn spec_for(
    host: Host,
    kind: EngineKind,
    layout: Layout,
    gpu: GpuChoice,
) -> Result<StackSpec, StackError> {
    let fx = fixture(host);
    desired(&engine(kind), &env_for(&fx), &settings(layout), gpu)
}

const ENGINES: [EngineKind; 2] = [EngineKind::Podman, EngineKind::Docker];
const LAYOUTS: [Layout; 2] = [Layout::Network, Layout::Pod];

#[test]
fn every_vendor_engine_and_layout() {
    for host in [Host::NvidiaWithCdi, Host::Amd, Host::Intel, Host::Cpu] {
        for kind in ENGINES {
            for layout in LAYOUTS {
                let result = spec_for(host, kind, layout, GpuChoice::Auto);
                if kind == EngineKind::Docker && layout == Layout::Pod {
                    assert!(
                        matches!(result, Err(StackError::Spec(SpecError::PodOnDocker))),
                        "{host:?}: {result:?}"
                    );
                    continue;
                }
                let spec = result.unwrap_or_else(|e| panic!("{host:?} {kind:?} {layout:?}: {e}"));
                check(host, kind, layout, &spec);
            }
        }
    }
}

fn check(host: Host, kind: EngineKind, layout: Layout, spec: &StackSpec) {
    let what = format!("{host:?} {kind:?} {layout:?}");
    let ollama = spec.service(Service::Ollama).unwrap();
    let assistant = spec.service(Service::Assistant).unwrap();
    assert_eq!(ollama.name, "nanna-t1-ollama");
    assert_eq!(assistant.name, "nanna-t1-assistant");
    // Environment of the model server.
    assert_eq!(ollama.env["OLLAMA_HOST"], "0.0.0.0:11434", "{what}");
    assert_eq!(ollama.env["OLLAMA_CONTEXT_LENGTH"], "110000", "{what}");
    assert_eq!(ollama.env["OLLAMA_KEEP_ALIVE"], "30m", "{what}");
    assert_eq!(
        ollama.mounts,
        vec![MountSpec::Volume {
            source: "nanna-t1-models".into(),
            target: "/root/.ollama".into()
        }]
    );
    assert_eq!(
        assistant.mounts,
        vec![MountSpec::Bind {
            source: "/home/alice/project".into(),
            target: "/workspace".into()
        }]
    );
    for c in &spec.services {
        assert_eq!(c.labels[LABEL_STACK], "t1");
        assert_eq!(c.labels[LABEL_SERVICE], c.service.as_str());
        assert_eq!(c.labels[LABEL_HASH], c.settings_hash);
        assert_eq!(c.settings_hash.len(), 16);
    }
    // GPU plumbing.
    match host {
        Host::NvidiaWithCdi => {
            assert_eq!(ollama.gpu, Accelerator::Nvidia);
            assert_eq!(ollama.image, "docker.io/ollama/ollama:latest");
            assert!(ollama.devices.is_empty());
            if kind == EngineKind::Docker {
                assert!(ollama.cdi_devices.is_empty(), "{what}");
                assert_eq!(ollama.device_requests.len(), 1, "{what}");
                assert_eq!(ollama.device_requests[0].driver, "nvidia");
                assert_eq!(ollama.device_requests[0].count, -1);
                assert_eq!(
                    ollama.device_requests[0].capabilities,
                    vec![vec!["gpu".to_string()]]
                );
            } else {
                assert_eq!(
                    ollama.cdi_devices,
                    vec!["nvidia.com/gpu=all".to_string()],
                    "{what}"
                );
                assert!(ollama.device_requests.is_empty(), "{what}");
            }
            assert_eq!(ollama.check_paths, vec!["/dev/nvidiactl".to_string()]);
        }
        Host::Amd => {
            assert_eq!(ollama.gpu, Accelerator::Amd);
            assert_eq!(ollama.image, "docker.io/ollama/ollama:rocm");
            let paths: Vec<(&str, &str)> = ollama
                .devices
                .iter()
                .map(|d| (d.path_on_host.as_str(), d.cgroup_permissions.as_str()))
                .collect();
            assert_eq!(paths, vec![("/dev/kfd", "rwm"), ("/dev/dri", "rwm")]);
            // video and render as the fixture host's group ids.
            assert_eq!(ollama.group_add, vec!["44".to_string(), "105".to_string()]);
            assert!(ollama.cdi_devices.is_empty() && ollama.device_requests.is_empty());
            assert_eq!(
                ollama.check_paths,
                vec!["/dev/kfd".to_string(), "/dev/dri".to_string()]
            );
        }
        Host::Intel => {
            assert_eq!(ollama.gpu, Accelerator::Intel);
            assert_eq!(ollama.devices.len(), 1);
            assert_eq!(ollama.devices[0].path_in_container, "/dev/dri");
            assert_eq!(
                ollama.env.get("OLLAMA_VULKAN").map(String::as_str),
                Some("1")
            );
            // The render nodes' groups, as the NixOS module gives them too (one recipe).
            assert_eq!(ollama.group_add, vec!["44".to_string(), "105".to_string()]);
        }
        Host::Cpu | Host::NvidiaNoCdi => {
            assert_eq!(ollama.gpu, Accelerator::None);
            assert!(
                ollama.devices.is_empty()
                    && ollama.cdi_devices.is_empty()
                    && ollama.device_requests.is_empty()
            );
            assert!(ollama.check_paths.is_empty());
        }
    }
    assert!(
        assistant.devices.is_empty()
            && assistant.device_requests.is_empty()
            && assistant.cdi_devices.is_empty()
    );
    // Layout.
    match layout {
        Layout::Network => {
            assert_eq!(spec.network.as_ref().unwrap().name, "nanna-t1");
            assert!(spec.pod.is_none());
            assert_eq!(assistant.env["OLLAMA_URL"], "http://nanna-t1-ollama:11434");
            assert_eq!(ollama.ports.len(), 1);
            assert_eq!(ollama.ports[0].host_ip, "127.0.0.1");
            assert_eq!(ollama.ports[0].host_port, 11434);
            assert_eq!(assistant.ports[0].host_port, 8080);
            assert_eq!(ollama.aliases, vec!["ollama".to_string()]);
        }
        Layout::Pod => {
            let pod = spec.pod.as_ref().unwrap();
            assert_eq!(pod.name, "nanna-t1");
            assert!(spec.network.is_none());
            assert_eq!(assistant.env["OLLAMA_URL"], "http://127.0.0.1:11434");
            assert!(ollama.ports.is_empty() && assistant.ports.is_empty());
            let published: Vec<(u16, u16)> = pod
                .ports
                .iter()
                .map(|p| (p.host_port, p.container_port))
                .collect();
            assert_eq!(published, vec![(11434, 11434), (8080, 8080)]);
        }
    }
    // The assistant gets what bubblewrap needs inside it (user namespaces: Docker's
    // default profile refuses them without CAP_SYS_ADMIN, Podman's allows them; a fresh
    // /proc: no masked or read-only path under /proc), an init to reap the sandbox's
    // orphans, and keeps every other confinement; the model server keeps the defaults.
    assert!(assistant.init && !ollama.init, "{what}");
    assert_eq!(assistant.security.proc_mount, ProcMount::Unmasked, "{what}");
    assert_eq!(ollama.security.proc_mount, ProcMount::Masked, "{what}");
    assert_eq!(
        ollama.security.seccomp,
        SeccompSpec::EngineDefault,
        "{what}"
    );
    match (&assistant.security.seccomp, kind) {
        (SeccompSpec::EngineDefault, EngineKind::Podman) => {}
        (SeccompSpec::Profile(p), EngineKind::Docker) => {
            assert_eq!(p.name, "nanna-assistant");
            assert_eq!(p.json, ASSISTANT_SECCOMP_JSON);
        }
        (other, _) => panic!("{what}: assistant seccomp {other:?}"),
    }
    assert_eq!(assistant.security.cap_drop, vec!["ALL".to_string()]);
    assert!(assistant.security.no_new_privileges && assistant.security.read_only_rootfs);
    // Engine request bodies.
    match kind {
        EngineKind::Docker => {
            let host = docker_body(assistant, "nanna-t1").host_config.unwrap();
            let options = host.security_opt.unwrap();
            assert_eq!(options[0], "no-new-privileges:true");
            assert_eq!(
                options[1].strip_prefix("seccomp="),
                Some(ASSISTANT_SECCOMP_JSON),
                "the profile goes inline, as the docker CLI sends a seccomp= file"
            );
            // Docker's default masked paths under /sys (moby oci/defaults.go), written out
            // here rather than read from images/container-security.json.
            assert_eq!(
                host.masked_paths.unwrap(),
                ["/sys/firmware", "/sys/devices/virtual/powercap"]
            );
            assert_eq!(host.readonly_paths, Some(vec![]));
            assert_eq!(host.init, Some(true));
            assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
            let host = docker_body(ollama, "nanna-t1").host_config.unwrap();
            assert_eq!(
                host.security_opt,
                Some(vec!["no-new-privileges:true".to_string()])
            );
            assert!(host.masked_paths.is_none() && host.readonly_paths.is_none());
            assert_eq!(host.init, None);
            let body = docker_body(ollama, "nanna-t1");
            let host_config = body.host_config.unwrap();
            assert_eq!(
                host_config
                    .restart_policy
                    .unwrap()
                    .name
                    .unwrap()
                    .to_string(),
                "unless-stopped"
            );
            let bindings = host_config.port_bindings.unwrap();
            let binding = bindings["11434/tcp"].as_ref().unwrap();
            assert_eq!(binding[0].host_ip.as_deref(), Some("127.0.0.1"));
            assert_eq!(binding[0].host_port.as_deref(), Some("11434"));
            assert_eq!(host_config.devices.unwrap().len(), ollama.devices.len());
            assert_eq!(
                host_config.device_requests.map(|r| r.len()).unwrap_or(0),
                ollama.device_requests.len()
            );
            let aliases = body.networking_config.unwrap().endpoints_config.unwrap()["nanna-t1"]
                .aliases
                .clone()
                .unwrap();
            assert_eq!(aliases, vec!["ollama".to_string()]);
        }
        EngineKind::Podman => {
            let body = libpod_create_body(spec, ollama);
            assert_eq!(body["restart_policy"], "unless-stopped");
            assert_eq!(
                body["volumes"],
                json!([{ "Name": "nanna-t1-models", "Dest": "/root/.ollama" }])
            );
            let devices: Vec<String> = body["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["path"].as_str().unwrap().to_string())
                .collect();
            match host {
                Host::NvidiaWithCdi => assert_eq!(devices, vec!["nvidia.com/gpu=all"]),
                Host::Amd => assert_eq!(
                    devices,
                    vec!["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"]
                ),
                Host::Intel => assert_eq!(devices, vec!["/dev/dri:/dev/dri:rwm"]),
                _ => assert!(devices.is_empty()),
            }
            match layout {
                Layout::Pod => {
                    assert_eq!(body["pod"], "nanna-t1");
                    assert!(body.get("portmappings").is_none() && body.get("networks").is_none());
                    let pod = libpod_pod_body(spec).unwrap();
                    assert_eq!(pod["portmappings"][0]["host_port"], 11434);
                    assert_eq!(pod["labels"][LABEL_STACK], "t1");
                }
                Layout::Network => {
                    assert!(body.get("pod").is_none());
                    assert_eq!(body["networks"]["nanna-t1"]["aliases"], json!(["ollama"]));
                    assert_eq!(body["portmappings"][0]["host_ip"], "127.0.0.1");
                    assert!(libpod_pod_body(spec).is_none());
                }
            }
            let assistant_body = libpod_create_body(spec, assistant);
            assert_eq!(assistant_body["mounts"][0]["source"], "/home/alice/project");
            assert_eq!(assistant_body["mounts"][0]["destination"], "/workspace");
            assert_eq!(assistant_body["unmask"], json!(["/proc/*"]));
            assert_eq!(
                assistant_body["mask"],
                json!(["/sys/firmware", "/sys/devices/virtual/powercap"])
            );
            assert_eq!(assistant_body["init"], true);
            assert_eq!(assistant_body["cap_drop"], json!(["ALL"]));
            assert_eq!(assistant_body["no_new_privileges"], true);
            assert!(assistant_body.get("seccomp_profile_path").is_none());
            for key in ["unmask", "mask", "init", "seccomp_profile_path"] {
                assert!(body.get(key).is_none(), "the model server has no {key}");
            }
        }
    }
}

#[test]
fn podman_nvidia_without_cdi_is_refused_but_docker_is_fine() {
    let error = spec_for(
        Host::NvidiaNoCdi,
        EngineKind::Podman,
        Layout::Network,
        GpuChoice::Auto,
    )
    .unwrap_err();
    assert!(matches!(error, StackError::NvidiaNeedsCdi), "{error}");
    assert!(error.to_string().contains("nvidia-ctk cdi generate"));
    let spec = spec_for(
        Host::NvidiaNoCdi,
        EngineKind::Docker,
        Layout::Network,
        GpuChoice::Auto,
    )
    .unwrap();
    assert_eq!(
        spec.service(Service::Ollama).unwrap().gpu,
        Accelerator::Nvidia
    );
    // CPU only is always possible.
    let spec = spec_for(
        Host::NvidiaNoCdi,
        EngineKind::Podman,
        Layout::Network,
        GpuChoice::Only(Accelerator::None),
    )
    .unwrap();
    assert_eq!(
        spec.service(Service::Ollama).unwrap().gpu,
        Accelerator::None
    );
}

#[test]
fn a_forced_gpu_the_host_lacks_is_an_error() {
    for gpu in [
        GpuChoice::Only(Accelerator::Nvidia),
        GpuChoice::Only(Accelerator::Amd),
        GpuChoice::Only(Accelerator::Intel),
    ] {
        let error = spec_for(Host::Cpu, EngineKind::Docker, Layout::Network, gpu).unwrap_err();
        assert!(matches!(error, StackError::Detect(_)), "{gpu:?}: {error}");
        assert!(error.to_string().contains("cannot be used"), "{error}");
    }
}

#[test]
fn overrides_and_extra_devices() {
    let fx = fixture(Host::Amd);
    let mut s = settings(Layout::Network);
    s.ollama_image = Some("localhost/ollama:mine".into());
    s.assistant = false;
    s.listen = "0.0.0.0:12345".parse().unwrap();
    s.context_length = 32768;
    s.keep_alive = "-1".into();
    s.extra_devices = vec![ExtraDevice::parse("/dev/null:/dev/fake-gpu").unwrap()];
    let spec = desired(
        &engine(EngineKind::Docker),
        &env_for(&fx),
        &s,
        GpuChoice::Auto,
    )
    .unwrap();
    assert_eq!(spec.services.len(), 1);
    let ollama = &spec.services[0];
    assert_eq!(ollama.image, "localhost/ollama:mine");
    assert_eq!(ollama.ports[0].host_ip, "0.0.0.0");
    assert_eq!(ollama.ports[0].host_port, 12345);
    assert_eq!(ollama.probe_addr.to_string(), "127.0.0.1:12345");
    assert_eq!(ollama.env["OLLAMA_CONTEXT_LENGTH"], "32768");
    assert_eq!(ollama.env["OLLAMA_KEEP_ALIVE"], "-1");
    assert_eq!(
        ollama.devices.last().unwrap().path_in_container,
        "/dev/fake-gpu"
    );
    assert!(ollama.check_paths.contains(&"/dev/fake-gpu".to_string()));
    assert!(ExtraDevice::parse("relative").is_err());
    // Invalid names and clashing ports.
    let mut bad = settings(Layout::Network);
    bad.name = "Bad Name".into();
    assert!(matches!(
        desired(
            &engine(EngineKind::Docker),
            &env_for(&fx),
            &bad,
            GpuChoice::Only(Accelerator::None)
        ),
        Err(StackError::Spec(SpecError::InvalidName { .. }))
    ));
    let mut clash = settings(Layout::Network);
    clash.assistant_listen = clash.listen;
    assert!(matches!(
        desired(
            &engine(EngineKind::Docker),
            &env_for(&fx),
            &clash,
            GpuChoice::Only(Accelerator::None)
        ),
        Err(StackError::Spec(SpecError::PortClash { .. }))
    ));
}

#[test]
fn the_hash_is_stable_and_follows_only_what_a_service_uses() {
    let fx = fixture(Host::Cpu);
    let env = env_for(&fx);
    let docker = engine(EngineKind::Docker);
    let base = desired(&docker, &env, &settings(Layout::Network), GpuChoice::Auto).unwrap();
    let again = desired(&docker, &env, &settings(Layout::Network), GpuChoice::Auto).unwrap();
    assert_eq!(base, again);
    let hash = |spec: &StackSpec, service| spec.service(service).unwrap().settings_hash.clone();

    let mut s = settings(Layout::Network);
    s.context_length = 4096;
    let changed = desired(&docker, &env, &s, GpuChoice::Auto).unwrap();
    assert_ne!(
        hash(&base, Service::Ollama),
        hash(&changed, Service::Ollama)
    );
    assert_eq!(
        hash(&base, Service::Assistant),
        hash(&changed, Service::Assistant)
    );

    let mut s = settings(Layout::Network);
    s.assistant_image = "localhost/other:1".into();
    let changed = desired(&docker, &env, &s, GpuChoice::Auto).unwrap();
    assert_eq!(
        hash(&base, Service::Ollama),
        hash(&changed, Service::Ollama)
    );
    assert_ne!(
        hash(&base, Service::Assistant),
        hash(&changed, Service::Assistant)
    );
}

fn actual_for(spec: &StackSpec, image_ids: &BTreeMap<String, String>) -> Actual {
    Actual {
        containers: spec
            .services
            .iter()
            .map(|c| ActualContainer {
                id: format!("id-{}", c.name),
                name: c.name.clone(),
                service: Some(c.service),
                settings_hash: Some(c.settings_hash.clone()),
                image_id: image_ids[&c.image]
                    .trim_start_matches("sha256:")
                    .to_string(),
                image: c.image.clone(),
                state: "running".into(),
                labels: c.labels.clone(),
                created: 1,
            })
            .collect(),
        networks: spec
            .network
            .iter()
            .map(|n| ActualNetwork {
                id: format!("net-{}", n.name),
                name: n.name.clone(),
            })
            .collect(),
        volumes: vec![spec.volume.name.clone()],
        pods: spec
            .pod
            .iter()
            .map(|p| ActualPod {
                name: p.name.clone(),
                settings_hash: Some(p.settings_hash.clone()),
                status: "Running".into(),
            })
            .collect(),
    }
}

fn ids(spec: &StackSpec) -> BTreeMap<String, String> {
    spec.services
        .iter()
        .map(|c| (c.image.clone(), format!("sha256:{}", c.image.len())))
        .collect()
}

#[test]
fn plans() {
    let fx = fixture(Host::Cpu);
    let env = env_for(&fx);
    let podman = engine(EngineKind::Podman);
    let spec = desired(&podman, &env, &settings(Layout::Network), GpuChoice::Auto).unwrap();
    let image_ids = ids(&spec);

    // Nothing there: create everything, network and volume before containers.
    let fresh = plan(&spec, &Actual::default(), &image_ids);
    let names: Vec<String> = fresh.steps.iter().map(|s| format!("{s:?}")).collect();
    assert!(
        matches!(fresh.steps[0], Step::CreateNetwork { .. }),
        "{names:?}"
    );
    assert!(
        matches!(fresh.steps[1], Step::CreateVolume { .. }),
        "{names:?}"
    );
    assert_eq!(
        fresh.created_services(),
        vec![Service::Ollama, Service::Assistant]
    );

    // Everything up to date: a no-op.
    let current = actual_for(&spec, &image_ids);
    assert!(plan(&spec, &current, &image_ids).is_noop());

    // A stopped container is started, not recreated.
    let mut stopped = current.clone();
    stopped.containers[1].state = "exited".into();
    let p = plan(&spec, &stopped, &image_ids);
    assert!(!p.is_noop());
    assert!(p.created_services().is_empty());
    assert!(p.steps.iter().any(|s| matches!(
        s,
        Step::StartContainer {
            service: Service::Assistant,
            ..
        }
    )));

    // A new image id recreates only that service.
    let mut newer = image_ids.clone();
    newer.insert(spec.services[0].image.clone(), "sha256:feed".into());
    let p = plan(&spec, &current, &newer);
    assert_eq!(p.created_services(), vec![Service::Ollama]);
    assert!(
        p.steps.iter().any(
            |s| matches!(s, Step::RemoveContainer { reason, .. } if reason == "image changed")
        )
    );

    // A changed setting recreates only the service it affects.
    let mut s = settings(Layout::Network);
    s.keep_alive = "1h".into();
    let changed = desired(&podman, &env, &s, GpuChoice::Auto).unwrap();
    let p = plan(&changed, &current, &image_ids);
    assert_eq!(p.created_services(), vec![Service::Ollama]);

    // Dropping the assistant removes its container only.
    let mut s = settings(Layout::Network);
    s.assistant = false;
    let smaller = desired(&podman, &env, &s, GpuChoice::Auto).unwrap();
    let p = plan(&smaller, &current, &image_ids);
    assert!(p.created_services().is_empty());
    assert!(p.steps.iter().any(
        |st| matches!(st, Step::RemoveContainer { name, .. } if name == "nanna-t1-assistant")
    ));

    // Switching to the pod layout removes the network and recreates both in a new pod.
    let pod_spec = desired(&podman, &env, &settings(Layout::Pod), GpuChoice::Auto).unwrap();
    let p = plan(&pod_spec, &current, &image_ids);
    assert!(
        p.steps
            .iter()
            .any(|st| matches!(st, Step::RemoveNetwork { .. }))
    );
    assert!(
        p.steps
            .iter()
            .any(|st| matches!(st, Step::CreatePod { .. }))
    );
    assert_eq!(
        p.created_services(),
        vec![Service::Ollama, Service::Assistant]
    );

    // A pod whose ports changed is recreated with everything in it.
    let pod_current = actual_for(&pod_spec, &image_ids);
    assert!(plan(&pod_spec, &pod_current, &image_ids).is_noop());
    let mut s = settings(Layout::Pod);
    s.assistant_listen = "127.0.0.1:9999".parse().unwrap();
    let moved = desired(&podman, &env, &s, GpuChoice::Auto).unwrap();
    let p = plan(&moved, &pod_current, &image_ids);
    assert!(
        matches!(p.steps[0], Step::RemovePod { .. }),
        "{:?}",
        p.steps
    );
    assert_eq!(
        p.created_services(),
        vec![Service::Ollama, Service::Assistant]
    );
}
