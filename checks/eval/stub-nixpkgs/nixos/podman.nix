# virtualisation.podman, after nixos/modules/virtualisation/podman/default.nix
# (Swarsel/nixpkgs@4aa6836a): enable (lines 69-80), package (mkPackageOption pkgs "podman",
# wrapped with `override` to add extra packages, 82-114), enableNvidia (deprecated; 191-200,
# read by the container toolkit). When enabled (config from line 262): the package is
# installed and its units (podman.service, podman.socket) come from systemd.packages, and
# a `podman` group exists. Only these parts are modelled.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.virtualisation.podman;
in
{
  options.virtualisation.podman = {
    enable = mkOption {
      type = types.bool;
      default = false;
    };
    package = lib.mkPackageOption pkgs "podman" { };
    enableNvidia = mkOption {
      type = types.bool;
      default = false;
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
    systemd.packages = [ cfg.package ];
    users.groups.podman = { };
  };
}
