# hardware.nvidia-container-toolkit, after nixos/modules/services/hardware/
# nvidia-container-toolkit/default.nix (Swarsel/nixpkgs@4aa6836a). Options: enable (lines
# 46-55), package, suppressNvidiaDriverAssertion (163-172), and others not modelled.
#   - the deprecated virtualisation.{docker,podman}.enableNvidia turn the toolkit on with
#     mkDefault (176-179);
#   - when enabled (223-392):
#     - an assertion wants an NVIDIA driver: hardware.nvidia.datacenter.enable, "nvidia" in
#       services.xserver.videoDrivers, or suppressNvidiaDriverAssertion (224-232);
#     - hardware.graphics.enable = true unless datacenter (243);
#     - nvidia-container-toolkit-cdi-generator.service, a oneshot wanted by
#       multi-user.target and required by docker.service / podman.service when those
#       engines are enabled (311-350), writes the CDI spec (nvidia.com/gpu=...);
#     - virtualisation.docker.daemon.settings.features.cdi = true whenever Docker's
#       *package* is version 25 or newer -- whether or not Docker is enabled -- and the
#       same for the rootless daemon (362-380).
#   The CDI mounts, csv/discovery options and the udev rule are not modelled.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.hardware.nvidia-container-toolkit;
in
{
  options.hardware.nvidia-container-toolkit = {
    enable = mkOption {
      type = types.bool;
      default = false;
    };
    suppressNvidiaDriverAssertion = mkOption {
      type = types.bool;
      default = false;
    };
  };

  config = lib.mkMerge [
    (lib.mkIf (config.virtualisation.docker.enableNvidia || config.virtualisation.podman.enableNvidia) {
      hardware.nvidia-container-toolkit.enable = lib.mkDefault true;
    })
    (lib.mkIf cfg.enable {
      assertions = [{
        assertion = config.hardware.nvidia.datacenter.enable
          || builtins.elem "nvidia" config.services.xserver.videoDrivers
          || cfg.suppressNvidiaDriverAssertion;
        message = ''`nvidia-container-toolkit` requires nvidia drivers: set `hardware.nvidia.datacenter.enable`, add "nvidia" to `services.xserver.videoDrivers`, or set `hardware.nvidia-container-toolkit.suppressNvidiaDriverAssertion`'';
      }];
      hardware.graphics.enable = lib.mkIf (!config.hardware.nvidia.datacenter.enable) true;
      systemd.services.nvidia-container-toolkit-cdi-generator = {
        description = "Container Device Interface (CDI) for Nvidia generator";
        requiredBy = lib.mkMerge [
          (lib.mkIf config.virtualisation.docker.enable [ "docker.service" ])
          (lib.mkIf config.virtualisation.podman.enable [ "podman.service" ])
        ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
      };
      virtualisation.docker =
        let newEnough = lib.versionAtLeast config.virtualisation.docker.package.version "25";
        in
        {
          daemon.settings = lib.mkIf newEnough { features.cdi = true; };
          rootless.daemon.settings = lib.mkIf newEnough { features.cdi = true; };
        };
    })
  ];
}
