//! What `up` must do: the desired stack compared with the engine's objects (found by their
//! labels) and the ids of the images the desired containers name.

use std::collections::BTreeMap;

use serde::Serialize;

use super::spec::{Service, StackSpec};

/// A container of the stack as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualContainer {
    /// Container id.
    pub id: String,
    /// Name (without the leading `/`).
    pub name: String,
    /// Its service label, when it names a known service.
    pub service: Option<Service>,
    /// Its settings-hash label.
    pub settings_hash: Option<String>,
    /// Id of the image it runs.
    pub image_id: String,
    /// Image reference it was created from.
    pub image: String,
    /// State (`running`, `exited`, `created`...).
    pub state: String,
    /// All its labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time (seconds since the epoch).
    pub created: i64,
}

impl ActualContainer {
    /// Whether it runs.
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// A network of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualNetwork {
    /// Id (Docker allows several networks of one name; ids are unique).
    pub id: String,
    /// Name.
    pub name: String,
}

/// A pod of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualPod {
    /// Name.
    pub name: String,
    /// Its settings-hash label.
    pub settings_hash: Option<String>,
    /// Status.
    pub status: String,
}

/// Everything of the stack the engine has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actual {
    /// Containers.
    pub containers: Vec<ActualContainer>,
    /// Networks.
    pub networks: Vec<ActualNetwork>,
    /// Volume names.
    pub volumes: Vec<String>,
    /// Pods (Podman).
    pub pods: Vec<ActualPod>,
}

impl Actual {
    /// Whether the stack has nothing on the engine.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.pods.is_empty()
    }

    /// The container of `service`.
    pub fn service(&self, service: Service) -> Option<&ActualContainer> {
        self.containers.iter().find(|c| c.service == Some(service))
    }
}

/// One step of a plan, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Remove a container (to recreate it, or because it is no longer wanted).
    RemoveContainer {
        /// Name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Remove a pod and whatever it still holds.
    RemovePod {
        /// Name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Remove a network that the layout no longer uses, or a duplicate of the stack's.
    RemoveNetwork {
        /// Name.
        name: String,
        /// Id (names can be ambiguous).
        id: String,
    },
    /// Create the network.
    CreateNetwork {
        /// Name.
        name: String,
    },
    /// Create the pod.
    CreatePod {
        /// Name.
        name: String,
    },
    /// Create the models volume.
    CreateVolume {
        /// Name.
        name: String,
    },
    /// Create and start a container.
    CreateContainer {
        /// Service.
        service: Service,
        /// Name.
        name: String,
        /// Why (`new`, `settings changed`, `image changed`).
        reason: String,
    },
    /// Start an existing, stopped container.
    StartContainer {
        /// Service.
        service: Service,
        /// Name.
        name: String,
    },
    /// Leave a running, up-to-date container alone.
    Keep {
        /// Service.
        service: Service,
        /// Name.
        name: String,
    },
}

/// The steps that bring the engine to the desired stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Whether the plan changes nothing.
    pub fn is_noop(&self) -> bool {
        self.steps.iter().all(|s| matches!(s, Step::Keep { .. }))
    }

    /// Services whose container is (re)created.
    pub fn created_services(&self) -> Vec<Service> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::CreateContainer { service, .. } => Some(*service),
                _ => None,
            })
            .collect()
    }
}

/// Compares `desired` with `actual`. `image_ids` maps each desired image reference to the
/// id the engine has for it now.
pub fn plan(desired: &StackSpec, actual: &Actual, image_ids: &BTreeMap<String, String>) -> Plan {
    let mut removals = Vec::new();
    let mut creations = Vec::new();
    let mut containers = Vec::new();

    // Pod: recreate when its settings changed; remove pods the layout no longer wants.
    let mut pod_recreated = false;
    for pod in &actual.pods {
        match &desired.pod {
            Some(want) if want.name == pod.name => {
                if pod.settings_hash.as_deref() != Some(want.settings_hash.as_str()) {
                    pod_recreated = true;
                    removals.push(Step::RemovePod {
                        name: pod.name.clone(),
                        reason: "pod settings changed".to_string(),
                    });
                }
            }
            _ => removals.push(Step::RemovePod {
                name: pod.name.clone(),
                reason: "not part of the stack any more".to_string(),
            }),
        }
    }
    if let Some(want) = &desired.pod
        && (pod_recreated || !actual.pods.iter().any(|p| p.name == want.name))
    {
        creations.push(Step::CreatePod {
            name: want.name.clone(),
        });
    }
    // Keep one network of the wanted name (the first the engine lists); remove the others,
    // including duplicates an older version could leave on Docker.
    let kept = desired
        .network
        .as_ref()
        .and_then(|want| actual.networks.iter().find(|n| n.name == want.name));
    for network in &actual.networks {
        if kept.is_none_or(|k| k.id != network.id) {
            creations.push(Step::RemoveNetwork {
                name: network.name.clone(),
                id: network.id.clone(),
            });
        }
    }
    if let Some(want) = &desired.network
        && kept.is_none()
    {
        creations.push(Step::CreateNetwork {
            name: want.name.clone(),
        });
    }
    if !actual.volumes.contains(&desired.volume.name) {
        creations.push(Step::CreateVolume {
            name: desired.volume.name.clone(),
        });
    }

    for container in &actual.containers {
        let wanted = container
            .service
            .and_then(|service| desired.service(service))
            .is_some_and(|spec| spec.name == container.name);
        if !wanted {
            removals.push(Step::RemoveContainer {
                name: container.name.clone(),
                reason: "not part of the stack any more".to_string(),
            });
        }
    }
    for spec in &desired.services {
        let existing = actual
            .containers
            .iter()
            .find(|c| c.service == Some(spec.service) && c.name == spec.name);
        let Some(existing) = existing else {
            containers.push(Step::CreateContainer {
                service: spec.service,
                name: spec.name.clone(),
                reason: "new".to_string(),
            });
            continue;
        };
        let reason = if pod_recreated {
            Some("its pod is recreated".to_string())
        } else if existing.settings_hash.as_deref() != Some(spec.settings_hash.as_str()) {
            Some("settings changed".to_string())
        } else if image_ids
            .get(&spec.image)
            .is_some_and(|id| bare_id(id) != bare_id(&existing.image_id))
        {
            Some("image changed".to_string())
        } else {
            None
        };
        match reason {
            Some(reason) => {
                if !pod_recreated {
                    removals.push(Step::RemoveContainer {
                        name: existing.name.clone(),
                        reason: reason.clone(),
                    });
                }
                containers.push(Step::CreateContainer {
                    service: spec.service,
                    name: spec.name.clone(),
                    reason,
                });
            }
            None if existing.running() => containers.push(Step::Keep {
                service: spec.service,
                name: spec.name.clone(),
            }),
            None => containers.push(Step::StartContainer {
                service: spec.service,
                name: spec.name.clone(),
            }),
        }
    }
    // Networks can only go once their containers are gone: after removals.
    let mut steps = removals;
    steps.extend(creations);
    steps.extend(containers);
    Plan { steps }
}

/// An image id without its `sha256:` prefix (engines differ in showing it).
fn bare_id(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}
