# services.nanna-coder: a local model server (Ollama) for the chosen GPU, run natively
# through nixpkgs' services.ollama or as Nix-built OCI containers (or none: a client of
# another machine's server), plus the `nanna` CLI installed system-wide and pointed at it
# (/etc/nanna/config.toml).
#
# The flake's nixosModules.default imports this file and defaults `package` and the images
# to the flake's own packages; it leaves the host's `pkgs` alone. Imported from its file,
# the module takes `pkgs.nanna` and `pkgs.nanna-coder-images` when an overlay provides them
# (the flake's overlays.default), and otherwise says, by assertion, what to set.
#
# What the upstream modules this one builds on do (services.ollama, oci-containers, the
# NVIDIA container toolkit, systemd unit merging) is reproduced, with line references, in
# checks/eval/stub-nixpkgs/nixos/.
{ config, lib, pkgs, ... }:
let
  inherit (lib)
    literalExpression
    mkDefault
    mkEnableOption
    mkForce
    mkIf
    mkMerge
    mkOption
    optional
    optionalAttrs
    optionals
    types
    ;

  cfg = config.services.nanna-coder;
  imageMeta = import ../images/lib.nix;
  tomlFormat = pkgs.formats.toml { };

  variant = imageMeta.variantForGpu.${cfg.gpu};
  packageAttr = imageMeta.variants.${variant}.package;
  imageAttr = "ollama-${variant}";

  isLoopback =
    builtins.elem cfg.host [ "localhost" "::1" "[::1]" ] || lib.hasPrefix "127." cfg.host;
  isWildcard = builtins.elem cfg.host [ "0.0.0.0" "::" "[::]" ];
  # The address clients on this machine use to reach the model server.
  clientHost =
    if isWildcard then "127.0.0.1"
    else if lib.hasInfix ":" cfg.host && !lib.hasPrefix "[" cfg.host then "[${cfg.host}]"
    else cfg.host;
  localUrl = "http://${clientHost}:${toString cfg.port}";
  serverUrl = if cfg.serverUrl != null then cfg.serverUrl else localUrl;
  runsServer = cfg.mode != "client";

  # What the chosen GPU needs (images/gpu-recipes.json, shared with nanna-deploy): systemd
  # DeviceAllow entries and supplementary groups for the native unit; devices
  # (oci-containers' `devices`, one --device each: CDI names or device nodes) and
  # --group-add flags with NixOS' group ids for the container.
  recipe = imageMeta.recipes.${cfg.gpu};
  gids = config.ids.gids;
  access = {
    deviceAllow = recipe.nix.device_allow;
    inherit (recipe) groups;
    devices = recipe.cdi_devices ++ recipe.devices;
    containerFlags = map (group: "--group-add=${toString gids.${group}}") recipe.groups;
  };
  # The option that writes the CDI spec the container's devices need (NVIDIA's toolkit).
  cdiOption = recipe.nix.cdi_option;
  cdiEnabled = cdiOption == null || lib.attrByPath (lib.splitString "." cdiOption) false config;
  packagePlatforms = recipe.nix.package_platforms;
  gpuDocs = lib.concatMapStringsSep "\n"
    (r: "- `\"${r.name}\"`: ${if r.compute == null then "no GPU" else r.compute} "
      + "(`pkgs.${r.nix.ollama_package}`, image tag `${r.nix.variant}`)"
      + lib.optionalString (r.devices != [ ] || r.cdi_devices != [ ])
      ", devices ${lib.concatMapStringsSep ", " (d: "`${d}`") (r.cdi_devices ++ r.devices)}"
      + lib.optionalString (r.groups != [ ]) ", groups ${lib.concatStringsSep " and " r.groups}"
      + ". ${r.nix.notes}")
    imageMeta.recipeList;

  modelServerEnv =
    recipe.env
    // optionalAttrs (cfg.contextLength != null) {
      OLLAMA_CONTEXT_LENGTH = toString cfg.contextLength;
    }
    // cfg.environmentVariables;

  configFile = tomlFormat.generate "nanna-config.toml" cfg.settings;
  nannaExe = if cfg.package != null then lib.getExe cfg.package else "nanna";

  # Sandboxing shared by the units this module defines.
  hardening = {
    DynamicUser = true;
    CapabilityBoundingSet = [ "" ];
    DevicePolicy = "closed";
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateTmp = true;
    PrivateUsers = true;
    ProcSubset = "pid";
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProtectSystem = "strict";
    RemoveIPC = true;
    RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" ];
    SystemCallErrorNumber = "EPERM";
    UMask = "0077";
  };

  backend = cfg.containers.backend;
  ollamaContainer = "nanna-coder-ollama";
  assistantContainer = "nanna-coder-assistant";
  imageRef = image: "${image.imageName}:${image.imageTag}";
  modelServerUnit =
    if cfg.mode == "native" then "ollama.service"
    else if cfg.mode == "containers" then
      "${config.virtualisation.oci-containers.containers.${ollamaContainer}.serviceName or "${backend}-${ollamaContainer}"}.service"
    else null;
  # Units the assistant and the model loader wait for.
  serverUnits = lib.optional (modelServerUnit != null) modelServerUnit;

  # How each container is confined: images/container-security.json, the table
  # `nanna-deploy up` embeds and renders as engine API requests, rendered by images/lib.nix
  # (`containerFlags`) as the `podman run` / `docker run` flags that oci-containers passes
  # on. oci-containers escapes each one with escapeShellArg, so `/proc/*` reaches the
  # engine unexpanded (checks/eval/stub-nixpkgs/nixos/oci-containers.nix).
  security = imageMeta.confinement;

  # The workspace's owner, whom the assistant runs as (the table's "workspace-owner"):
  # the named host user, else the image's user (images/assistant.json).
  imageUser = imageMeta.assistant.config.User;
  workspaceDir = imageMeta.assistant.config.WorkingDir;
  ownerName = cfg.containers.user;
  owner = if ownerName == null then null else config.users.users.${ownerName} or null;
  ownerGid =
    if owner == null then null else config.users.groups.${owner.group}.gid or null;
  ownerIds =
    if ownerName == null then imageUser else "${toString owner.uid}:${toString ownerGid}";
  ownerKnown = ownerName == null || (owner != null && owner.uid != null && ownerGid != null);

  # oci-containers options of `service`'s container (a row of the table).
  confined = service:
    let row = security.services.${service}; in
    {
      capabilities = lib.genAttrs row.cap_drop (_: false);
      extraOptions = imageMeta.containerFlags backend service;
      environment = optionalAttrs (row.home != null) { HOME = row.home; };
    }
    // optionalAttrs (row.user == "workspace-owner") { user = ownerIds; };

  workspace = cfg.containers.workspace;
  workspaceProblem =
    if workspace == null then null
    else imageMeta.workspaceRefusal workspace (if owner == null then null else owner.home);
  runsAssistantContainer = cfg.assistant.serve && cfg.containers.assistantImage != null;

  # How to get what is missing, for the assertions below.
  howToGetPackages = ''
    Import the module through the flake (nixosModules.default), add the flake's
    overlays.default to nixpkgs.overlays (or to the pkgs you pass in nixpkgs.pkgs), or set the
    option yourself.'';
in
{
  options.services.nanna-coder = {
    enable = mkEnableOption "Nanna Coder, a local-first coding assistant with a local model server";

    package = mkOption {
      type = types.nullOr types.package;
      default = pkgs.nanna or null;
      defaultText = literalExpression "the flake's packages.<system>.nanna, else pkgs.nanna";
      description = ''
        The `nanna` CLI, installed system-wide and run by the assistant service. The flake's
        `nixosModules.default` sets it to the flake's own package; imported from its file,
        the module takes `pkgs.nanna` when an overlay provides it.
      '';
    };

    gpu = mkOption {
      type = types.enum (map (r: r.name) imageMeta.recipeList);
      default = "none";
      example = "amd";
      description = ''
        Which GPU the model server uses (ignored with `mode = "client"`). It selects the Ollama build (or model-server image),
        the devices the service may open and its groups (images/gpu-recipes.json, which
        `nanna-deploy` reads too):

        ${gpuDocs}

        `nix run .#detect-gpu` (or `nanna-deploy detect`) tells which one this machine has.
      '';
    };

    mode = mkOption {
      type = types.enum [ "native" "containers" "client" ];
      default = "native";
      description = ''
        How the model server runs:

        - `"native"`: nixpkgs' {option}`services.ollama` with the package chosen by
          {option}`services.nanna-coder.gpu` (or {option}`services.nanna-coder.modelServerPackage`),
          as a sandboxed systemd unit.
        - `"containers"`: the flake's Nix-built images through
          {option}`virtualisation.oci-containers` (loaded from the Nix store with `imageStream`,
          no registry), with the engine chosen by {option}`services.nanna-coder.containers.backend`.
          Both containers use the host network and are confined as `nanna-deploy up` confines
          them (images/container-security.json): no capability, `no-new-privileges`; the
          assistant also a read-only root, a non-root user, an init, and what its `shell`
          sandbox (bubblewrap) needs inside. Its project is
          {option}`services.nanna-coder.containers.workspace`.
        - `"client"`: no model server on this machine; the CLI (and the assistant service, if
          enabled) use the server at {option}`services.nanna-coder.serverUrl`, e.g. a team's
          GPU machine.
      '';
    };

    serverUrl = mkOption {
      type = types.nullOr (types.strMatching "https?://[^[:space:]]+");
      default = null;
      example = "http://gpu-server.lan:11434";
      description = ''
        URL of the model server the CLI and the assistant use. `null` means this machine's
        own server (`http://<host>:<port>`, loopback when it listens on all addresses).
        Required with `mode = "client"`.
      '';
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address the model server listens on.";
    };

    port = mkOption {
      type = types.port;
      default = 11434;
      description = "TCP port the model server listens on.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether to open {option}`services.nanna-coder.port` in the firewall so other machines
        can use the model server. Only useful with a non-loopback
        {option}`services.nanna-coder.host`.
      '';
    };

    loadModels = mkOption {
      type = types.listOf types.str;
      # As services.ollama's loadModels: empty names are dropped.
      apply = builtins.filter (model: model != "");
      default = [ ];
      example = [ "qwen2.5-coder:7b" "llama3.1:8b" ];
      description = ''
        Models pulled as soon as the model server has started (in the background; they need
        network access to the Ollama library).
      '';
    };

    contextLength = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      example = 32768;
      description = ''
        Default context window of the model server (`OLLAMA_CONTEXT_LENGTH`), also used as
        the CLI's `context_window`. `null` keeps Ollama's default, which can be as low as
        4096 tokens and silently truncates long coding sessions.
      '';
    };

    environmentVariables = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        OLLAMA_KEEP_ALIVE = "30m";
        HSA_OVERRIDE_GFX_VERSION = "10.3.0";
      };
      description = "Extra environment variables of the model server.";
    };

    modelServerPackage = mkOption {
      type = types.package;
      default = pkgs.${packageAttr};
      defaultText = literalExpression ''
        pkgs.ollama-cpu, pkgs.ollama-cuda, pkgs.ollama-rocm or pkgs.ollama-vulkan,
        following services.nanna-coder.gpu'';
      example = literalExpression "pkgs.ollama-vulkan";
      description = ''
        The model server of native mode. Any package whose main program behaves like
        `ollama serve` (reads `OLLAMA_HOST`, serves the Ollama API) fits; the VM tests use it to
        run a scripted server.
      '';
    };

    defaultModel = mkOption {
      type = types.str;
      default = "qwen2.5-coder:7b";
      example = "llama3.1:8b";
      description = "Model the `nanna` CLI uses unless told otherwise (`model` in the settings).";
    };

    settings = mkOption {
      type = types.submodule { freeformType = tomlFormat.type; };
      default = { };
      example = {
        temperature = 0.2;
        keep_alive = "30m";
      };
      description = ''
        The CLI's configuration, written as {file}`/etc/nanna/config.toml`. `provider`, `url`,
        `model` and `context_window` default to the local server, {option}`services.nanna-coder.defaultModel`
        and {option}`services.nanna-coder.contextLength`. Users override it in
        {file}`~/.config/nanna/config.toml`, the environment or flags.
      '';
    };

    assistant = {
      serve = mkOption {
        type = types.bool;
        default = cfg.mode == "containers";
        defaultText = literalExpression ''config.services.nanna-coder.mode == "containers"'';
        description = ''
          Whether to run the long-running assistant (`nanna serve`, with a health endpoint):
          the assistant image in containers mode, a sandboxed systemd unit otherwise.
        '';
      };
      listen = mkOption {
        type = types.str;
        default = "127.0.0.1:8080";
        description = "Address and port `nanna serve` listens on.";
      };
    };

    containers = {
      backend = mkOption {
        type = types.enum [ "podman" "docker" ];
        default = "podman";
        description = ''
          Container engine of containers mode (sets {option}`virtualisation.oci-containers.backend`,
          which enables that engine).
        '';
      };
      images = mkOption {
        type = types.attrsOf types.unspecified;
        default = pkgs.nanna-coder-images or { };
        defaultText = literalExpression "the flake's images for this system, else pkgs.nanna-coder-images";
        internal = true;
        description = "Where the image defaults below come from (`assistant`, `ollama-<variant>`).";
      };
      modelServerImage = mkOption {
        type = types.nullOr types.package;
        default = cfg.containers.images.${imageAttr} or null;
        defaultText = literalExpression ''the flake's "ollama-''${variant}" image (cpu, cuda, rocm or vulkan, following gpu)'';
        description = ''
          Model-server image of containers mode: a `dockerTools.streamLayeredImage` with
          `imageName` and `imageTag` (an image built some other way works too, as long as it
          has those two attributes and writes a docker-archive to stdout).
        '';
      };
      assistantImage = mkOption {
        type = types.nullOr types.package;
        default = cfg.containers.images.assistant or null;
        defaultText = literalExpression "the flake's assistant image";
        description = "Assistant image of containers mode, like `modelServerImage`.";
      };
      workspace = mkOption {
        type = types.nullOr (types.pathWith { absolute = true; inStore = false; });
        default = "/srv/nanna-coder";
        example = "/home/alice/src/project";
        description = ''
          Host directory the assistant container works in, mounted read-write at
          `/workspace` (its working directory, where `nanna chat` in the container edits
          files and runs commands). Created when missing and owned by
          {option}`services.nanna-coder.containers.user` (only the directory itself).

          Refused, as `nanna-deploy up --workspace` refuses them: `/`, system directories
          (`/usr`, `/home`, `/srv`, `/tmp`...), anything below `/etc`, `/var/lib`, `/run`,
          `/nix/store` (and the other trees of `images/container-security.json`), and the
          owner's home directory or a directory above it. Give it normalized (NixOS cannot resolve links
          when it builds the system).

          `null` mounts nothing: the assistant then has only the image's empty, read-only
          `/workspace`, and its tools can write only in `/tmp` (a tmpfs).
        '';
      };
      user = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "alice";
        description = ''
          Host user the assistant container runs as (its uid and the gid of its primary
          group), and the owner of {option}`services.nanna-coder.containers.workspace`, so
          the files the assistant writes there belong to this user. NixOS needs both ids
          when it builds the system: set `users.users.<name>.uid` (and the group's `gid`,
          unless it is a static group such as `users`).

          `null` runs the image's user, uid 1000 and gid 1000 (`images/assistant.json`),
          as `nanna-deploy up` does with a workspace owned by root. Never root.
        '';
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      services.nanna-coder.settings = {
        provider = mkDefault "ollama";
        url = mkDefault serverUrl;
        model = mkDefault cfg.defaultModel;
        context_window = mkIf (cfg.contextLength != null) (mkDefault cfg.contextLength);
      };

      assertions = [
        {
          assertion = cfg.package != null;
          message = ''
            services.nanna-coder: package is not set and pkgs has no `nanna` (the Nanna Coder CLI).
            ${howToGetPackages}'';
        }
        {
          assertion = !(cfg.openFirewall && isLoopback);
          message = ''
            services.nanna-coder: openFirewall = true opens port ${toString cfg.port}, but host = "${cfg.host}"
            only listens on loopback, so other machines still cannot connect. Set
            services.nanna-coder.host = "0.0.0.0" (or this machine's LAN address), or openFirewall = false.'';
        }
        {
          assertion = cfg.defaultModel != "";
          message = ''
            services.nanna-coder: defaultModel is empty. Set it to a model name such as "qwen2.5-coder:7b".'';
        }
      ];

      environment.systemPackages = optionals (cfg.package != null) [ cfg.package ];
      environment.etc."nanna/config.toml".source = configFile;

      # nanna's `shell` tool runs commands under bubblewrap (the package carries its own),
      # which needs user namespaces. NixOS allows them by default: security.allowUserNamespaces
      # is true, and the mainline kernel lets unprivileged users create them (the
      # kernel.unprivileged_userns_clone switch that security.unprivilegedUsernsClone sets
      # exists only in linux_hardened) (nixos/modules/security/misc.nix). Without them nanna
      # still runs, but refuses commands in its read-only and workspace-write modes.
      warnings = optional (!config.security.allowUserNamespaces) ''
        services.nanna-coder: security.allowUserNamespaces = false, so nanna's `shell` tool cannot
        confine commands (bubblewrap needs user namespaces) and refuses them in the read-only and
        workspace-write modes. Allow them, or accept that only `--sandbox full` runs commands.'';

      networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ cfg.port ];
    }

    (mkIf runsServer {
      assertions = [{
        assertion = packagePlatforms == null || builtins.elem pkgs.stdenv.hostPlatform.system packagePlatforms;
        message = ''
          services.nanna-coder: gpu = "${cfg.gpu}" uses ${toString recipe.compute}, which nixpkgs builds for
          ${lib.concatStringsSep ", " (if packagePlatforms == null then [ ] else packagePlatforms)} only
          (this system is ${pkgs.stdenv.hostPlatform.system}). Use gpu = "intel" (Vulkan, which also
          drives AMD and NVIDIA GPUs) or gpu = "none".'';
      }];
    })

    (mkIf (cfg.mode == "native") {
      assertions = [{
        # CUDA libraries are unfree; nixpkgs refuses to evaluate ollama-cuda without this.
        assertion = !recipe.nix.unfree || (pkgs.config.allowUnfree or false) || pkgs.config ? allowUnfreePredicate;
        message = ''
          services.nanna-coder: gpu = "${cfg.gpu}" runs ${recipe.nix.ollama_package}, which needs ${toString recipe.compute}'s unfree libraries.
          Set nixpkgs.config.allowUnfree = true (or an allowUnfreePredicate that admits the CUDA
          packages), or use mode = "containers", whose image the flake builds with CUDA allowed.'';
      }];

      services.ollama = {
        enable = true;
        package = cfg.modelServerPackage;
        inherit (cfg) host port loadModels;
        environmentVariables = modelServerEnv;
      };

      # services.ollama allows the devices of every GPU vendor. A list-valued unit setting
      # concatenates across modules, so only an override can narrow it to the chosen GPU;
      # with no GPU the list is empty and DevicePolicy = closed (set by services.ollama)
      # leaves only the standard pseudo devices. Groups are added, not replaced:
      # services.ollama already adds `render`.
      systemd.services.ollama.serviceConfig = {
        DeviceAllow = mkForce access.deviceAllow;
        SupplementaryGroups = lib.subtractLists [ "render" ] access.groups;
      };
    })

    (mkIf (cfg.mode != "containers" && cfg.assistant.serve) {
      systemd.services.nanna-coder-assistant = {
        description = "Nanna Coder assistant (nanna serve)";
        wantedBy = [ "multi-user.target" ];
        wants = serverUnits ++ optionals (!runsServer) [ "network-online.target" ];
        after = [ "network.target" ] ++ serverUnits ++ optionals (!runsServer) [ "network-online.target" ];
        restartTriggers = [ configFile ];
        environment = {
          HOME = "/var/lib/nanna-coder";
          RUST_LOG = "info";
        };
        serviceConfig = hardening // {
          Type = "exec";
          ExecStart = "${nannaExe} serve --listen ${cfg.assistant.listen}";
          StateDirectory = "nanna-coder";
          WorkingDirectory = "/var/lib/nanna-coder";
          Restart = "on-failure";
          RestartSec = "5s";
        };
      };
    })

    (mkIf (cfg.mode == "client") {
      assertions = [
        {
          assertion = cfg.serverUrl != null;
          message = ''
            services.nanna-coder: mode = "client" runs no model server here, so the CLI needs one elsewhere.
            Set services.nanna-coder.serverUrl, e.g. "http://gpu-server.lan:11434".'';
        }
        {
          assertion = cfg.loadModels == [ ] && !cfg.openFirewall;
          message = ''
            services.nanna-coder: loadModels and openFirewall configure a model server, and mode = "client"
            runs none on this machine. Set them on the server's host instead.'';
        }
      ];
    })

    (mkIf (cfg.mode == "containers") {
      assertions = [
        {
          assertion = cdiEnabled;
          message = ''
            services.nanna-coder: gpu = "${cfg.gpu}" in containers mode needs the CDI device ${lib.concatStringsSep ", " recipe.cdi_devices}.
            Set ${toString cdiOption} = true (with the ${recipe.display_name} driver), or use mode = "native".'';
        }
        {
          # virtualisation.oci-containers enables the engine; only a forced `false` gets here.
          assertion = config.virtualisation.${backend}.enable;
          message = ''
            services.nanna-coder: containers.backend = "${backend}" needs virtualisation.${backend}.enable = true,
            but it is disabled elsewhere in this configuration. Remove that setting, or choose the other
            backend with services.nanna-coder.containers.backend.'';
        }
        {
          assertion = !(config.services.ollama.enable && config.services.ollama.port == cfg.port);
          message = ''
            services.nanna-coder: mode = "containers" runs its own model server on port ${toString cfg.port},
            which services.ollama (also enabled) uses too. Disable services.ollama, use mode = "native",
            or give services.nanna-coder.port another value.'';
        }
        {
          assertion = cfg.containers.modelServerImage != null;
          message = ''
            services.nanna-coder: there is no ${imageAttr} model-server image for ${pkgs.stdenv.hostPlatform.system}.
            The flake builds the ${imageAttr} image for ${if recipe.nix.image_platforms == null then "every Linux system" else lib.concatStringsSep ", " recipe.nix.image_platforms} only; choose gpu = "intel" or "none",
            or use mode = "native" there. Elsewhere: ${howToGetPackages}
            (services.nanna-coder.containers.modelServerImage)'';
        }
        {
          assertion = !cfg.assistant.serve || cfg.containers.assistantImage != null;
          message = ''
            services.nanna-coder: there is no assistant image (services.nanna-coder.containers.assistantImage).
            ${howToGetPackages}'';
        }
        {
          assertion = !runsAssistantContainer || ownerKnown;
          message = ''
            services.nanna-coder: containers.user = "${toString ownerName}" must be a user of this system with a
            fixed uid and a primary group with a fixed gid: the assistant container runs as those numbers, which
            NixOS must know when it builds the system. Set users.users.${toString ownerName}.uid (and the gid of
            its group), or containers.user = null to run the image's user (${imageUser}).'';
        }
        {
          assertion = !runsAssistantContainer || !ownerKnown || ownerName == null || owner.uid != 0;
          message = ''
            services.nanna-coder: containers.user = "${toString ownerName}" is root, and the assistant never runs as root
            (`nanna-deploy up` uses the image's user for a workspace owned by root). Name another user, or set
            containers.user = null to run the image's user (${imageUser}).'';
        }
        {
          assertion = !runsAssistantContainer || workspaceProblem == null;
          message = ''
            services.nanna-coder: containers.workspace = "${toString workspace}" is refused: ${toString workspaceProblem}.
            Choose a project directory of its own (e.g. "/srv/nanna-coder" or "/home/alice/src/project"), or null
            for no workspace.'';
        }
      ];

      # The workspace exists and belongs to the user the assistant runs as (tmpfiles.d(5):
      # `d` creates a missing directory and adjusts the owner of an existing one; mode `-`
      # leaves an existing directory's mode alone and creates a new one 0755).
      systemd.tmpfiles.rules = optional (runsAssistantContainer && workspace != null)
        "d ${workspace} - ${if ownerName == null then lib.replaceStrings [ ":" ] [ " " ] imageUser else "${ownerName} ${owner.group}"} -";

      virtualisation.oci-containers = {
        inherit backend;
        # No capability and no-new-privileges, with the GPU's devices and groups: Ollama's
        # documented `docker run` lines need no capability for any GPU (devices come from
        # CDI or device cgroup rules plus the groups), as in `up`.
        containers.${ollamaContainer} = mkIf (cfg.containers.modelServerImage != null) (confined "ollama" // {
          image = imageRef cfg.containers.modelServerImage;
          imageStream = cfg.containers.modelServerImage;
          environment = (confined "ollama").environment // modelServerEnv // {
            OLLAMA_HOST = "${cfg.host}:${toString cfg.port}";
          };
          volumes = [ "nanna-coder-models:${imageMeta.modelsDir}" ];
          inherit (access) devices;
          networks = [ "host" ];
          extraOptions = (confined "ollama").extraOptions ++ access.containerFlags;
        });
        # Read-only root with a tmpfs /tmp as HOME, not root, no capability,
        # no-new-privileges, an init, and what bubblewrap needs to confine the shell
        # tool's commands inside (user namespaces: Docker's seccomp profile replaced; a
        # /proc without masks).
        containers.${assistantContainer} = mkIf runsAssistantContainer (confined "assistant" // {
          image = imageRef cfg.containers.assistantImage;
          imageStream = cfg.containers.assistantImage;
          cmd = [ "serve" "--listen" cfg.assistant.listen ];
          environment = (confined "assistant").environment // { OLLAMA_URL = serverUrl; };
          volumes = [ "${configFile}:/etc/nanna/config.toml:ro" ]
            ++ optional (workspace != null) "${workspace}:${workspaceDir}";
          networks = [ "host" ];
          dependsOn = [ ollamaContainer ];
        });
      };

      systemd.services.nanna-coder-load-models = mkIf (cfg.loadModels != [ ] && cfg.package != null) {
        description = "Pull the models of services.nanna-coder.loadModels";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ] ++ serverUnits;
        bindsTo = serverUnits;
        environment.HOME = "/run/nanna-coder-load-models";
        serviceConfig = hardening // {
          Type = "oneshot";
          RuntimeDirectory = "nanna-coder-load-models";
          ExecStart = map (model: "${nannaExe} --url ${serverUrl} pull ${lib.escapeShellArg model}") cfg.loadModels;
          Restart = "on-failure";
          RestartSec = "10s";
        };
      };
    })
  ]);

  meta = {
    # Shown in the NixOS manual when this module is included in it. Maintainers are left
    # out: NixOS accepts only entries of lib.maintainers there, and ours is not one.
    doc = ./nanna-coder.md;
  };
}
