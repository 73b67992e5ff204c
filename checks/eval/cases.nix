# Evaluation cases of services.nanna-coder, shared by two runners:
#   - checks/eval/ci.nix: nixpkgs' lib.evalModules on the NixOS stand-in
#     (checks/eval/stub-nixpkgs/nixos), where no nixpkgs tree is available;
#   - flake checks.<system>.module-eval: real NixOS (lib.nixosSystem) at the pinned revision.
# `evalWith module` must return { config, pkgs } of a NixOS system made of the flake's
# nixosModules.default and `module` (which sets nixpkgs.hostPlatform itself).
#
# The expected values below are written out by hand (not derived from the module) so a
# wrong mapping in the module makes a check fail. Where an expectation depends on what an
# upstream module does, the comment names the stand-in that reproduces it.
{ lib, evalWith, flakePackages }:
let
  # The expected values come from images/gpu-recipes.json, the table nanna-deploy embeds
  # and validates against its sources (crates/nanna-deploy/src/recipe.rs), not from the
  # module: a wrong mapping in the module makes a check fail, and a new row is checked
  # without editing this file.
  recipes = (builtins.fromJSON (builtins.readFile ../../images/gpu-recipes.json)).accelerators;
  gpus = map (r: r.name) recipes;
  byGpu = f: builtins.listToAttrs (map (r: { inherit (r) name; value = f r; }) recipes);
  # NixOS' gids of the groups the recipes name (nixos/modules/misc/ids.nix), which the
  # images' /etc/group mirror (images/lib.nix).
  nixosGids = { video = 26; render = 303; };

  expected = {
    package = byGpu (r: r.nix.ollama_package);
    tag = byGpu (r: r.nix.variant);
    deviceAllow = byGpu (r: r.nix.device_allow);
    # services.ollama always adds `render` (stub-nixpkgs/nixos/ollama.nix); we add the rest.
    groups = byGpu (r: sorted (lib.unique ([ "render" ] ++ r.groups)));
    devices = byGpu (r: r.cdi_devices ++ r.devices);
    groupAdd = byGpu (r: map (g: "--group-add=${toString nixosGids.${g}}") r.groups);
    env = byGpu (r: r.env);
  };

  # The confinement of `nanna-deploy up` (crates/nanna-deploy/README.md, "The deployed
  # containers") as `podman run` / `docker run` flags, written out by hand in
  # checks/eval/confinement-flags.json (not read from images/container-security.json), so a
  # wrong mapping (or a changed table) fails here. `@assistant-seccomp.json` there stands
  # for the profile's store path: a store path is named by the file's name and content, so
  # equal paths are the same file.
  confinementFlags = (builtins.fromJSON (builtins.readFile ./confinement-flags.json)).flags;
  flagsOf = backend: service:
    map
      (builtins.replaceStrings [ "@assistant-seccomp.json" ] [ "${../../images/assistant-seccomp.json}" ])
      confinementFlags.${backend}.${service};
  esc = lib.escapeShellArg;
  # What a host needs before the module can use the GPU (the NVIDIA driver for the
  # container toolkit), and the option writing its CDI spec in containers mode.
  hostFor = gpu: (byGpu (r: r.nix.host)).${gpu};
  cdiFor = gpu: mode:
    let option = (byGpu (r: r.nix.cdi_option)).${gpu}; in
    lib.optionalAttrs (option != null && mode == "containers")
      (lib.setAttrByPath (lib.splitString "." option) true);
  sorted = builtins.sort builtins.lessThan;

  # A minimal host with the module enabled and `module` applied; `packages` is the flake's
  # packages for its system.
  run = { system ? "x86_64-linux", module }:
    evalWith
      {
        imports = [ module ];
        services.nanna-coder.enable = true;
        nixpkgs.hostPlatform = system;
        nixpkgs.config.allowUnfree = true;
        boot.loader.grub.enable = false;
        fileSystems."/" = {
          device = "none";
          fsType = "tmpfs";
        };
        system.stateVersion = "25.11";
      } // { packages = flakePackages.${system}; };

  # Messages of every failed assertion (ours and the other modules'): a host fails on any.
  failures = config:
    map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);

  # One named check; `value` is forced inside tryEval so an evaluation error fails the
  # check instead of the whole run.
  check = case: what: value: want:
    let
      got = builtins.tryEval (builtins.deepSeq value value);
      ok = got.success && got.value == want;
    in
    {
      inherit case what ok;
      detail =
        if ok then ""
        else if !got.success then "evaluation failed"
        else "got ${builtins.toJSON got.value}, want ${builtins.toJSON want}";
    };

  # The case must fail with an assertion whose message contains `needle`.
  fails = case: module: needle:
    let
      r = run { inherit module; };
      got = builtins.tryEval (builtins.deepSeq (failures r.config) (failures r.config));
      ok = got.success && builtins.any (lib.hasInfix needle) got.value;
    in
    [{
      inherit case ok;
      what = "fails with an assertion mentioning \"${needle}\"";
      detail =
        if ok then ""
        else if !got.success then "evaluation failed"
        else "assertion messages: ${builtins.toJSON got.value}";
    }];

  nativeCase = gpu:
    let
      case = "native, gpu = ${gpu}";
      r = run {
        module = {
          imports = [ (hostFor gpu) ];
          services.nanna-coder = { inherit gpu; };
        };
      };
      inherit (r) config;
      unit = config.systemd.services.ollama.serviceConfig;
    in
    [
      (check case "no assertion fails" (failures config) [ ])
      (check case "services.ollama is enabled" config.services.ollama.enable true)
      (check case "model server is pkgs.${expected.package.${gpu}}"
        (config.services.ollama.package == r.pkgs.${expected.package.${gpu}})
        true)
      (check case "DeviceAllow narrowed to the GPU" unit.DeviceAllow expected.deviceAllow.${gpu})
      # Our narrowing relies on services.ollama's closed device policy.
      (check case "DevicePolicy closed" unit.DevicePolicy "closed")
      (check case "SupplementaryGroups" (sorted unit.SupplementaryGroups) expected.groups.${gpu})
      (check case "no containers" (config.virtualisation.oci-containers.containers ? nanna-coder-ollama) false)
      (check case "the flake's CLI installed" (builtins.elem r.packages.nanna config.environment.systemPackages) true)
      (check case "CLI points at the local server" config.services.nanna-coder.settings.url "http://127.0.0.1:11434")
      (check case "/etc/nanna/config.toml written" (config.environment.etc ? "nanna/config.toml") true)
      (check case "the recipe's environment, and only it"
        (builtins.intersectAttrs
          (lib.genAttrs (lib.concatMap (r: builtins.attrNames r.env) recipes) (_: null))
          config.services.ollama.environmentVariables)
        expected.env.${gpu})
    ];

  containersCase = backend: gpu:
    let
      case = "containers (${backend}), gpu = ${gpu}";
      r = run {
        module = {
          services.nanna-coder = {
            inherit gpu;
            mode = "containers";
            containers.backend = backend;
          };
          # The toolkit asserts an NVIDIA driver (stub-nixpkgs/nixos/nvidia-container-toolkit.nix):
          # the recipe's host settings provide it.
          imports = [ (hostFor gpu) (cdiFor gpu "containers") ];
        };
      };
      inherit (r) config;
      ctrs = config.virtualisation.oci-containers.containers;
      ollama = ctrs.nanna-coder-ollama;
      assistant = ctrs.nanna-coder-assistant;
      units = config.systemd.services;
      ollamaUnit = units."${backend}-nanna-coder-ollama";
      assistantUnit = units."${backend}-nanna-coder-assistant";
      tag = expected.tag.${gpu};
      assistantScriptFlags = map esc (flagsOf backend "assistant");
      # oci-containers escapes each argument of the run command (stub-nixpkgs/nixos/
      # oci-containers.nix), so the script holds them quoted where the shell needs it.
      inScript = unit: text: lib.hasInfix " ${builtins.unsafeDiscardStringContext text} " (builtins.replaceStrings [ "\\\n" ] [ " " ] unit.script + " ");
    in
    [
      (check case "no assertion fails" (failures config) [ ])
      (check case "backend" config.virtualisation.oci-containers.backend backend)
      # oci-containers enables the engine (stub-nixpkgs/nixos/oci-containers.nix).
      (check case "engine enabled" config.virtualisation.${backend}.enable true)
      (check case "services.ollama stays off" config.services.ollama.enable false)
      (check case "image ref" ollama.image "localhost/nanna-coder-ollama:${tag}")
      (check case "image streamed from the flake's image"
        (ollama.imageStream == r.packages."ollama-${tag}-image")
        true)
      (check case "devices" ollama.devices expected.devices.${gpu})
      (check case "model server: no capability, no-new-privileges, the GPU's groups"
        { inherit (ollama) capabilities extraOptions user; home = ollama.environment.HOME or null; }
        {
          capabilities.ALL = false;
          extraOptions = flagsOf backend "ollama" ++ expected.groupAdd.${gpu};
          user = null;
          home = null;
        })
      (check case "unit runs the container with the devices and the host network"
        (map (d: lib.hasInfix "--device=${esc d}" ollamaUnit.script) expected.devices.${gpu}
          ++ [ (lib.hasInfix "--network=host" ollamaUnit.script) ])
        (map (_: true) expected.devices.${gpu} ++ [ true ]))
      (check case "model server unit drops every capability" (lib.hasInfix "--cap-drop=ALL" ollamaUnit.script) true)
      (check case "assistant: no capability, confined as up confines it"
        { inherit (assistant) capabilities extraOptions; }
        { capabilities.ALL = false; extraOptions = flagsOf backend "assistant"; })
      (check case "assistant: the image's user (no workspace owner named), HOME on the tmpfs"
        { inherit (assistant) user; inherit (assistant.environment) HOME; }
        { user = "1000:1000"; HOME = "/tmp"; })
      (check case "assistant: the default workspace, read-write at /workspace, made for its user"
        {
          volumes = builtins.tail assistant.volumes;
          tmpfiles = builtins.filter (lib.hasInfix "/srv/nanna-coder") config.systemd.tmpfiles.rules;
        }
        {
          volumes = [ "/srv/nanna-coder:/workspace" ];
          tmpfiles = [ "d /srv/nanna-coder - 1000 1000 -" ];
        })
      (check case "assistant unit passes each flag as one argument, unexpanded"
        (map (inScript assistantUnit) ([ "--cap-drop=ALL" "-u 1000:1000" ] ++ assistantScriptFlags))
        (map (_: true) ([ "--cap-drop=ALL" "-u 1000:1000" ] ++ assistantScriptFlags)))
      (check case "unit needs no network to get its image" (builtins.elem "network-online.target" ollamaUnit.after) false)
      (check case "listens where the CLI looks" ollama.environment.OLLAMA_HOST "127.0.0.1:11434")
      (check case "assistant container" ctrs.nanna-coder-assistant.image "localhost/nanna-coder-assistant:latest")
      (check case "assistant starts after the model server"
        (builtins.elem "${backend}-nanna-coder-ollama.service" assistantUnit.after
          && builtins.elem "${backend}-nanna-coder-ollama.service" assistantUnit.requires)
        true)
      (check case "assistant reaches the server" ctrs.nanna-coder-assistant.environment.OLLAMA_URL
        "http://127.0.0.1:11434")
      # The container toolkit turns Docker's CDI on whenever it is enabled and Docker's
      # package is >= 25, even with Docker itself off (stub-nixpkgs/nixos/
      # nvidia-container-toolkit.nix); this module does not set it.
      (check case "docker CDI exactly when the toolkit is on"
        (config.virtualisation.docker.daemon.settings.features.cdi or false)
        (cdiFor gpu "containers" != { }))
    ];

  clientCases =
    let
      case = "client of another machine's server";
      r = run {
        module.services.nanna-coder = {
          mode = "client";
          serverUrl = "http://gpu-server.lan:11434";
          assistant.serve = true;
        };
      };
      inherit (r) config;
    in
    [
      (check case "no assertion fails" (failures config) [ ])
      (check case "no local model server"
        [ config.services.ollama.enable (config.virtualisation.oci-containers.containers != { }) ]
        [ false false ])
      (check case "CLI points at the server" config.services.nanna-coder.settings.url "http://gpu-server.lan:11434")
      (check case "assistant waits for the network"
        (builtins.elem "network-online.target" config.systemd.services.nanna-coder-assistant.after)
        true)
    ];

  settingsCases =
    let
      case = "host 0.0.0.0, openFirewall, contextLength";
      r = run {
        module.services.nanna-coder = {
          host = "0.0.0.0";
          port = 11500;
          openFirewall = true;
          contextLength = 65536;
          defaultModel = "llama3.1:8b";
          settings.temperature = 0.2;
        };
      };
      inherit (r) config;
      s = config.services.nanna-coder.settings;
    in
    [
      (check case "no assertion fails" (failures config) [ ])
      (check case "firewall opened" (builtins.elem 11500 config.networking.firewall.allowedTCPPorts) true)
      (check case "server listens on all addresses" config.services.ollama.host "0.0.0.0")
      (check case "CLI uses loopback" s.url "http://127.0.0.1:11500")
      (check case "model" s.model "llama3.1:8b")
      (check case "context window in the CLI config" s.context_window 65536)
      (check case "extra setting kept" s.temperature 0.2)
      (check case "OLLAMA_CONTEXT_LENGTH" config.services.ollama.environmentVariables.OLLAMA_CONTEXT_LENGTH "65536")
    ];

  overrideCases =
    let
      case = "native, modelServerPackage override, assistant.serve";
      r = run {
        module = { pkgs, ... }: {
          services.nanna-coder = {
            modelServerPackage = pkgs.ollama;
            assistant.serve = true;
          };
        };
      };
      inherit (r) config;
      unit = config.systemd.services.nanna-coder-assistant.serviceConfig;
    in
    [
      (check case "override used" (config.services.ollama.package == r.pkgs.ollama) true)
      (check case "assistant unit hardened"
        {
          inherit (unit) DynamicUser ProtectSystem PrivateTmp NoNewPrivileges RestrictAddressFamilies;
          filtersSyscalls = builtins.elem "@system-service" unit.SystemCallFilter;
        }
        {
          DynamicUser = true;
          ProtectSystem = "strict";
          PrivateTmp = true;
          NoNewPrivileges = true;
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
          filtersSyscalls = true;
        })
    ];

  loadModelsCases =
    let
      case = "containers, loadModels";
      r = run {
        module.services.nanna-coder = {
          mode = "containers";
          loadModels = [ "qwen2.5-coder:7b" "" ];
        };
      };
      unit = r.config.systemd.services.nanna-coder-load-models;
      native = run {
        module.services.nanna-coder.loadModels = [ "" "llama3.1:8b" ];
      };
    in
    [
      (check case "loader pulls through the CLI"
        (builtins.match ".*/bin/nanna --url http://127.0.0.1:11434 pull '?qwen2.5-coder:7b'?"
          (builtins.head unit.serviceConfig.ExecStart) != null)
        true)
      (check case "empty model names dropped, as services.ollama does" (builtins.length unit.serviceConfig.ExecStart) 1)
      (check case "loader starts after the container" (builtins.elem "podman-nanna-coder-ollama.service" unit.after) true)
      (check "native, loadModels" "handed to services.ollama without empty names"
        native.config.services.ollama.loadModels [ "llama3.1:8b" ])
    ];

  badCases =
    fails "openFirewall with a loopback host"
      { services.nanna-coder.openFirewall = true; }
      "openFirewall = true"
    ++ fails "nvidia containers without the container toolkit"
      { services.nanna-coder = { gpu = "nvidia"; mode = "containers"; }; }
      "hardware.nvidia-container-toolkit.enable = true"
    ++ fails "docker backend with docker disabled"
      {
        services.nanna-coder = { mode = "containers"; containers.backend = "docker"; };
        virtualisation.docker.enable = lib.mkForce false;
      }
      "needs virtualisation.docker.enable = true"
    ++ fails "containers mode beside services.ollama on the same port"
      {
        services.nanna-coder.mode = "containers";
        services.ollama.enable = true;
      }
      "Disable services.ollama"
    ++ fails "empty defaultModel"
      { services.nanna-coder.defaultModel = ""; }
      "defaultModel is empty"
    ++ fails "native nvidia without unfree packages allowed"
      {
        services.nanna-coder.gpu = "nvidia";
        services.xserver.videoDrivers = [ "nvidia" ];
        hardware.nvidia.open = true;
        nixpkgs.config = lib.mkForce { };
      }
      "nixpkgs.config.allowUnfree = true"
    ++ fails "workspace owner without a fixed uid"
      {
        users.users.bob.isNormalUser = true;
        services.nanna-coder = { mode = "containers"; containers.user = "bob"; };
      }
      "Set users.users.bob.uid"
    ++ fails "workspace owner that does not exist"
      { services.nanna-coder = { mode = "containers"; containers.user = "nobody-here"; }; }
      "must be a user of this system with a"
    ++ fails "assistant as root"
      { services.nanna-coder = { mode = "containers"; containers.user = "root"; }; }
      "the assistant never runs as root"
    # Refused as nanna-deploy up refuses a --workspace (images/container-security.json).
    ++ fails "workspace /"
      { services.nanna-coder = { mode = "containers"; containers.workspace = "/"; }; }
      "is refused: it is a system directory"
    ++ fails "workspace /home"
      { services.nanna-coder = { mode = "containers"; containers.workspace = "/home"; }; }
      "is refused: it is a system directory"
    ++ fails "workspace below /etc"
      { services.nanna-coder = { mode = "containers"; containers.workspace = "/etc/nanna"; }; }
      "it is inside /etc, which belongs to the system"
    ++ fails "workspace below /var/lib"
      { services.nanna-coder = { mode = "containers"; containers.workspace = "/var/lib/nanna-coder"; }; }
      "it is inside /var/lib, which belongs to the system"
    ++ fails "workspace with .. (cannot be resolved when the system is built)"
      { services.nanna-coder = { mode = "containers"; containers.workspace = "/srv/../etc"; }; }
      "is not a normalized absolute path"
    ++ fails "workspace = the owner's home"
      {
        users.users.alice = { isNormalUser = true; uid = 1001; };
        services.nanna-coder = { mode = "containers"; containers = { user = "alice"; workspace = "/home/alice"; }; };
      }
      "it is its owner's home directory"
    ++ fails "workspace above the owner's home"
      {
        users.users.alice = { isNormalUser = true; uid = 1001; home = "/data/alice"; };
        services.nanna-coder = { mode = "containers"; containers = { user = "alice"; workspace = "/data"; }; };
      }
      "it holds its owner's home directory /data/alice"
    ++ fails "client without a server URL"
      { services.nanna-coder.mode = "client"; }
      "Set services.nanna-coder.serverUrl"
    ++ fails "client with loadModels"
      {
        services.nanna-coder = {
          mode = "client";
          serverUrl = "http://gpu-server.lan:11434";
          loadModels = [ "qwen2.5-coder:7b" ];
        };
      }
      "Set them on the server's host";

  aarch64Cases =
    let
      mk = case: module: needle:
        let
          r = run { system = "aarch64-linux"; inherit module; };
          msgs = failures r.config;
        in
        check case "fails with an assertion mentioning \"${needle}\""
          (builtins.any (lib.hasInfix needle) msgs)
          true;
    in
    [
      (mk "aarch64: gpu = amd" { services.nanna-coder.gpu = "amd"; } "ROCm")
      (mk "aarch64: nvidia image in containers mode"
        {
          services.nanna-coder = { gpu = "nvidia"; mode = "containers"; };
          hardware.nvidia-container-toolkit.enable = true;
          services.xserver.videoDrivers = [ "nvidia" ];
          hardware.nvidia.open = true;
        }
        "no ollama-cuda model-server image")
      (check "aarch64: gpu = intel" "no assertion fails"
        (failures (run { system = "aarch64-linux"; module.services.nanna-coder.gpu = "intel"; }).config)
        [ ])
    ];
  # The workspace and whom the assistant runs as: a named owner's uid and its group's gid
  # (a normal user's group is `users`, gid 100: stub-nixpkgs/nixos/users.nix), no mount
  # without a workspace, no assistant container (and nothing made) without assistant.serve.
  workspaceCases =
    let
      alice = {
        users.users.alice = { isNormalUser = true; uid = 1001; };
      };
      owned = run {
        module = {
          imports = [ alice ];
          services.nanna-coder = {
            mode = "containers";
            containers = { user = "alice"; workspace = "/home/alice/src/project"; };
          };
        };
      };
      ownedCtr = owned.config.virtualisation.oci-containers.containers.nanna-coder-assistant;
      none = run {
        module.services.nanna-coder = { mode = "containers"; containers.workspace = null; };
      };
      noneCtr = none.config.virtualisation.oci-containers.containers.nanna-coder-assistant;
      noAssistant = run {
        module.services.nanna-coder = { mode = "containers"; assistant.serve = false; };
      };
      noAssistantCtrs = noAssistant.config.virtualisation.oci-containers.containers;
      tmpfilesOf = r: builtins.filter (lib.hasPrefix "d /") r.config.systemd.tmpfiles.rules;
    in
    [
      (check "workspace owned by a named user" "no assertion fails" (failures owned.config) [ ])
      (check "workspace owned by a named user" "runs as alice's uid and the users group"
        ownedCtr.user "1001:100")
      (check "workspace owned by a named user" "mounted read-write at /workspace, made alice's"
        { volumes = builtins.tail ownedCtr.volumes; tmpfiles = tmpfilesOf owned; }
        {
          volumes = [ "/home/alice/src/project:/workspace" ];
          tmpfiles = [ "d /home/alice/src/project - alice users -" ];
        })
      (check "no workspace (null)" "no assertion fails" (failures none.config) [ ])
      (check "no workspace (null)" "only the configuration is mounted, nothing is made"
        { volumes = map (v: lib.last (lib.splitString ":" v)) noneCtr.volumes; tmpfiles = tmpfilesOf none; }
        { volumes = [ "ro" ]; tmpfiles = [ ]; })
      (check "no workspace (null)" "still confined"
        { inherit (noneCtr) user capabilities; readOnly = builtins.elem "--read-only" noneCtr.extraOptions; }
        { user = "1000:1000"; capabilities.ALL = false; readOnly = true; })
      (check "containers without assistant.serve" "no assistant container, no workspace made"
        { assistant = noAssistantCtrs ? nanna-coder-assistant; tmpfiles = tmpfilesOf noAssistant; }
        { assistant = false; tmpfiles = [ ]; })
      (check "containers without assistant.serve" "the model server is still confined"
        noAssistantCtrs.nanna-coder-ollama.capabilities
        { ALL = false; })
    ];

  # bubblewrap needs user namespaces: NixOS allows them by default (no warning); a host
  # that turns them off is warned that the shell tool will refuse confined commands.
  usernsCases =
    let
      warned = module: builtins.any (lib.hasInfix "security.allowUserNamespaces")
        (run { inherit module; }).config.warnings;
    in
    [
      (check "user namespaces (NixOS default)" "no warning" (warned { }) false)
      (check "security.allowUserNamespaces = false" "warns that shell refuses confined commands"
        (warned { security.allowUserNamespaces = false; })
        true)
    ];
in
builtins.concatLists (
  map nativeCase gpus
  ++ map (containersCase "podman") gpus
  ++ map (containersCase "docker") gpus
  ++ [ clientCases settingsCases overrideCases loadModelsCases badCases aarch64Cases usernsCases workspaceCases ]
)
