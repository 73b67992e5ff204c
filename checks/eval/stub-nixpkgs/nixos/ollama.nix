# services.ollama, after nixos/modules/services/misc/ollama.nix (NixOS/nixpkgs@f2a7dbae).
#   Options (lines 42-190): package (mkPackageOption pkgs "ollama", line 45; the GPU backend
#   is chosen by package since `acceleration` was removed, lines 36-40), user/group (63-85),
#   home/models (86-102), host 127.0.0.1 / port 11434 (104-119), rocmOverrideGfx (121-133),
#   environmentVariables (135-149), loadModels, whose `apply` drops empty strings (151-170,
#   line 153), syncModels (171-178), openFirewall (180-188).
#   Config (lines 192-354), only when enabled:
#   - ollama.service (202-281): wanted by multi-user.target, after network.target;
#     environment = environmentVariables overlaid with HOME, OLLAMA_MODELS and
#     OLLAMA_HOST = "host:port", then HSA_OVERRIDE_GFX_VERSION when rocmOverrideGfx is set
#     (206-215); ExecStart "<main program of package> serve" (224); DynamicUser; a sandbox
#     whose DeviceAllow lists the CUDA, ROCm and WSL devices of *every* vendor (233-245),
#     DevicePolicy closed, PrivateDevices = false (251), SupplementaryGroups [ "render" ]
#     (273);
#   - ollama-model-loader.service when loadModels (after the filter) is non-empty or
#     syncModels is set (283-349): wanted by multi-user.target and ollama.service, after
#     and bound to ollama.service, pulls every model with `ollama pull` (347);
#   - opens `port` when openFirewall (351); installs the package (353).
#   The static user (193-200) and the model loader's script text are not modelled.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.ollama;
in
{
  options.services.ollama = {
    enable = lib.mkEnableOption "ollama";
    package = lib.mkPackageOption pkgs "ollama" { };
    user = mkOption {
      type = types.nullOr types.str;
      default = null;
    };
    group = mkOption {
      type = types.nullOr types.str;
      default = cfg.user;
    };
    home = mkOption {
      type = types.str;
      default = "/var/lib/ollama";
    };
    models = mkOption {
      type = types.str;
      default = "${cfg.home}/models";
    };
    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
    };
    port = mkOption {
      type = types.port;
      default = 11434;
    };
    rocmOverrideGfx = mkOption {
      type = types.nullOr types.str;
      default = null;
    };
    environmentVariables = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };
    loadModels = mkOption {
      type = types.listOf types.str;
      apply = builtins.filter (m: m != "");
      default = [ ];
    };
    syncModels = mkOption {
      type = types.bool;
      default = false;
    };
    openFirewall = mkOption {
      type = types.bool;
      default = false;
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.ollama = {
      description = "Server for local large language models";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      environment = cfg.environmentVariables // {
        HOME = cfg.home;
        OLLAMA_MODELS = cfg.models;
        OLLAMA_HOST = "${cfg.host}:${toString cfg.port}";
      } // lib.optionalAttrs (cfg.rocmOverrideGfx != null) {
        HSA_OVERRIDE_GFX_VERSION = cfg.rocmOverrideGfx;
      };
      serviceConfig = {
        Type = "exec";
        DynamicUser = true;
        ExecStart = "${lib.getExe cfg.package} serve";
        WorkingDirectory = cfg.home;
        StateDirectory = [ "ollama" ];
        CapabilityBoundingSet = [ "" ];
        DeviceAllow = [
          "char-nvidiactl"
          "char-nvidia-caps"
          "char-nvidia-frontend"
          "char-nvidia-uvm"
          "char-drm"
          "char-fb"
          "char-kfd"
          "/dev/dxg"
        ];
        DevicePolicy = "closed";
        NoNewPrivileges = true;
        PrivateDevices = false;
        PrivateTmp = true;
        ProtectSystem = "strict";
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        SupplementaryGroups = [ "render" ];
      };
    };

    systemd.services.ollama-model-loader = lib.mkIf (cfg.loadModels != [ ] || cfg.syncModels) {
      description = "Download ollama models in the background";
      wantedBy = [ "multi-user.target" "ollama.service" ];
      wants = [ "network-online.target" ];
      after = [ "ollama.service" "network-online.target" ];
      bindsTo = [ "ollama.service" ];
      serviceConfig = {
        Type = "exec";
        DynamicUser = true;
        Restart = "on-failure";
      };
      script = "ollama pull ${lib.escapeShellArgs cfg.loadModels}";
    };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];
    environment.systemPackages = [ cfg.package ];
  };
}
