# virtualisation.docker, after nixos/modules/virtualisation/docker.nix
# (Swarsel/nixpkgs@4aa6836a): enable (lines 36-47), package (mkPackageOption pkgs "docker",
# line 49), daemon.settings, a submodule whose freeform type is JSON with one declared
# option live-restore (154-187), enableNvidia (deprecated, 189-198, read by the container
# toolkit). When enabled (config from line 301): the package is installed, docker.service
# and docker.socket are defined and the docker group exists; the daemon settings get group,
# hosts and log-driver (not modelled). `rootless.daemon.settings` is declared by
# virtualisation/docker-rootless.nix (not read); it is declared here only because the
# container toolkit writes to it.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.virtualisation.docker;
  # JSON values, as pkgs.formats.json's type (our own recursive definition).
  json = types.nullOr
    (types.oneOf [
      types.bool
      types.int
      types.float
      types.str
      types.path
      (types.attrsOf json)
      (types.listOf json)
    ]) // { description = "JSON value"; };
  settings = types.submodule {
    freeformType = types.attrsOf json;
    options.live-restore = mkOption {
      type = types.bool;
      default = lib.versionOlder config.system.stateVersion "24.11";
    };
  };
in
{
  options.virtualisation.docker = {
    enable = mkOption {
      type = types.bool;
      default = false;
    };
    package = lib.mkPackageOption pkgs "docker" { };
    daemon.settings = mkOption {
      type = settings;
      default = { };
    };
    rootless.daemon.settings = mkOption {
      type = settings;
      default = { };
    };
    rootless.extraPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    enableNvidia = mkOption {
      type = types.bool;
      default = false;
    };
    extraPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
    systemd.services.docker = {
      after = [ "network.target" "docker.socket" ];
      requires = [ "docker.socket" ];
      wantedBy = [ "multi-user.target" ];
    };
    users.groups.docker.gid = config.ids.gids.docker;
  };
}
