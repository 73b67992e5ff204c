# users.users and users.groups, after nixos/modules/config/users-groups.nix. Confirmed by
# search in a copy of that file: the static groups, including video and render, get their
# gids from ids.gids. The user options below (isNormalUser, isSystemUser, extraGroups,
# group, home, uid, linger) and the built-in root user were not checked against source.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.users = {
    users = mkOption {
      default = { };
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          name = mkOption {
            type = types.str;
            default = name;
          };
          isNormalUser = mkOption {
            type = types.bool;
            default = false;
          };
          isSystemUser = mkOption {
            type = types.bool;
            default = false;
          };
          uid = mkOption {
            type = types.nullOr types.int;
            default = null;
          };
          group = mkOption {
            type = types.str;
            default = "";
          };
          extraGroups = mkOption {
            type = types.listOf types.str;
            default = [ ];
          };
          home = mkOption {
            type = types.str;
            default = "/var/empty";
          };
          linger = mkOption {
            type = types.bool;
            default = false;
          };
        };
      }));
    };
    groups = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.gid = mkOption {
          type = types.nullOr types.int;
          default = null;
        };
      });
    };
  };

  config.users = {
    users.root = {
      uid = 0;
      group = "root";
      home = "/root";
    };
    groups = {
      root.gid = 0;
      wheel.gid = 1;
      video.gid = config.ids.gids.video;
      render.gid = config.ids.gids.render;
    };
  };
}
