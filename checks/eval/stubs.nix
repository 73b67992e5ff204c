# Stub declarations of the NixOS options services.nanna-coder sets or reads, so that
# `lib.evalModules` can run the module's logic with nixpkgs' lib alone (no NixOS tree).
# Types are loose (freeform attribute sets) but merge definitions and priorities
# (mkDefault, mkForce) like the real ones.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  freeform = types.submodule { freeformType = types.attrsOf types.anything; };
  bool = default: mkOption { type = types.bool; inherit default; };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    ids.gids = mkOption {
      type = types.attrsOf types.int;
      default = {
        video = 26;
        render = 303;
      };
    };

    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    environment.etc = mkOption {
      type = types.attrsOf freeform;
      default = { };
    };

    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };

    systemd.services = mkOption {
      type = types.attrsOf (types.submodule {
        freeformType = types.attrsOf types.anything;
        options.serviceConfig = mkOption {
          type = types.attrsOf types.anything;
          default = { };
        };
      });
      default = { };
    };

    services.ollama = {
      enable = bool false;
      package = mkOption { type = types.package; };
      host = mkOption {
        type = types.str;
        default = "127.0.0.1";
      };
      port = mkOption {
        type = types.port;
        default = 11434;
      };
      loadModels = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      environmentVariables = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      openFirewall = bool false;
    };

    virtualisation.podman.enable = bool false;
    virtualisation.docker.enable = bool false;
    virtualisation.docker.daemon.settings = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    virtualisation.oci-containers = {
      backend = mkOption {
        type = types.enum [ "podman" "docker" ];
        default = "podman";
      };
      containers = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
    };

    hardware.nvidia-container-toolkit.enable = bool false;
  };
}
