# GPU drivers the example hosts configure.
#   - hardware.graphics, after nixos/modules/hardware/graphics.nix (Swarsel/nixpkgs@4aa6836a):
#     enable (lines 54-68), extraPackages; when enabled the driver set defaults to mesa
#     (config from line 131; not modelled beyond the options).
#   - hardware.amdgpu, after nixos/modules/services/hardware/amdgpu.nix (same revision):
#     initrd.enable loads amdgpu in stage 1 (lines 13-16, 51); opencl.enable turns
#     hardware.graphics on with mkDefault (25, 64-72).
#   - hardware.nvidia, after nixos/modules/hardware/video/nvidia.nix, read only in the
#     excerpts a search returned (two stored copies; lines not counted): the driver is on
#     when "nvidia" is in services.xserver.videoDrivers (or datacenter.enable), and then an
#     assertion wants hardware.nvidia.open set explicitly ("You must configure
#     `hardware.nvidia.open` on NVIDIA driver versions >= 560"). The rest of that module
#     (driver package, kernel modules, prime) is not modelled.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  bool = mkOption {
    type = types.bool;
    default = false;
  };
in
{
  options = {
    hardware.graphics.enable = bool;
    hardware.graphics.extraPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    hardware.amdgpu.initrd.enable = bool;
    hardware.amdgpu.opencl.enable = bool;
    hardware.nvidia.open = mkOption {
      type = types.nullOr types.bool;
      default = null;
    };
    hardware.nvidia.modesetting.enable = bool;
    hardware.nvidia.datacenter.enable = bool;
    services.xserver.videoDrivers = mkOption {
      type = types.listOf types.str;
      default = [ "modesetting" "fbdev" ];
    };
  };

  config = lib.mkMerge [
    { boot.initrd.kernelModules = lib.optionals config.hardware.amdgpu.initrd.enable [ "amdgpu" ]; }
    (lib.mkIf (builtins.elem "nvidia" config.services.xserver.videoDrivers || config.hardware.nvidia.datacenter.enable) {
      assertions = [{
        assertion = config.hardware.nvidia.open != null || config.hardware.nvidia.datacenter.enable;
        message = "You must configure `hardware.nvidia.open` on NVIDIA driver versions >= 560.";
      }];
    })
    (lib.mkIf config.hardware.amdgpu.opencl.enable { hardware.graphics.enable = lib.mkDefault true; })
  ];
}
