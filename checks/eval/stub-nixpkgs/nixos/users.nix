# users.users and users.groups, after nixos/modules/config/users-groups.nix. Confirmed by
# search in copies of that file: the static groups, including users, video and render, get
# their gids from ids.gids (`users.gid = ids.gids.users;` among them), and the user
# submodule's config gives a normal user (`mkIf config.isNormalUser`) `group = mkDefault
# "users"` and `home = mkDefault "/home/<name>"` (the services.nanna-coder workspace owner
# resolves its gid through its group). The other user options below (isSystemUser,
# extraGroups, uid, linger) and the built-in root user were not checked against source.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.users = {
    users = mkOption {
      default = { };
      type = types.attrsOf (types.submodule ({ name, config, ... }: {
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
        config = lib.mkIf config.isNormalUser {
          group = lib.mkDefault "users";
          home = lib.mkDefault "/home/${config.name}";
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
      users.gid = config.ids.gids.users;
      video.gid = config.ids.gids.video;
      render.gid = config.ids.gids.render;
    };
  };
}
