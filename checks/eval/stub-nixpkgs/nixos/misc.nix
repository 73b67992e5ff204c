# Generic NixOS options: assertions and the system derivation that enforces them, module
# meta, ids, environment, firewall, and the plain options the example hosts set.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  loose = default: mkOption {
    type = types.anything;
    inherit default;
  };
  bool = default: mkOption {
    type = types.bool;
    inherit default;
  };
  strings = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
in
{
  options = {
    # nixos/modules/misc/assertions.nix: lists of { assertion; message; } and of strings.
    # Not checked against source (the option shapes are stable and well known).
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    # nixos/modules/misc/meta.nix (Swarsel/nixpkgs@4aa6836a, lines 3-7 and 33-41): `meta.doc`
    # is a path, one per module, and every definition is kept. modules/generic/
    # meta-maintainers.nix (NixOS/nixpkgs@453a7b57, lines 11-19): each maintainer must be an
    # element of lib.maintainers (line 13), so a module outside nixpkgs cannot name its own.
    meta = {
      doc = mkOption {
        type = types.path // { merge = _loc: defs: defs; };
        internal = true;
      };
      buildDocsInSandbox = mkOption {
        type = types.bool // { merge = _loc: defs: defs; };
        default = true;
        internal = true;
      };
      maintainers = mkOption {
        type = types.listOf (lib.mkOptionType {
          name = "maintainer";
          check = m: builtins.elem m (builtins.attrValues lib.maintainers);
        });
        default = [ ];
      };
    };

    # nixos/modules/misc/ids.nix: the static group ids (found in a copy of ids.nix by
    # search: render = 303, "default udev rules from systemd requires these"; video = 26;
    # users = 100).
    # Only the groups this project uses.
    ids.gids = mkOption {
      type = types.attrsOf types.int;
      default = {
        users = 100;
        video = 26;
        render = 303;
        docker = 131;
        podman = 198;
      };
    };

    system.stateVersion = mkOption {
      type = types.str;
      default = "26.11";
    };
    # nixos/modules/system/activation/top-level.nix: the system derivation throws
    # "Failed assertions:" with every failed message, else shows the warnings (found by
    # search in copies of top-level.nix; the exact lines were not counted).
    system.build = mkOption {
      type = types.lazyAttrsOf types.unspecified;
      default = { };
    };

    # nixos/modules/config/system-path.nix and system/etc/etc.nix: not checked against
    # source; their types only need to hold packages and { source | text } entries here.
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule {
        options.source = mkOption {
          type = types.nullOr types.path;
          default = null;
        };
        options.text = mkOption {
          type = types.nullOr types.lines;
          default = null;
        };
      });
      default = { };
    };

    # nixos/modules/services/networking/firewall.nix: not checked against source.
    networking.firewall.enable = bool true;
    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };
    networking.proxy.envVars = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };
    networking.hostName = mkOption {
      type = types.str;
      default = "nixos";
    };
    networking.networkmanager.enable = bool false;

    # Plain options the example hosts and hardware-configuration.nix files set. Declared so
    # a misspelt option still fails; their types are loose and not checked against source.
    boot.loader.systemd-boot.enable = bool false;
    boot.loader.efi.canTouchEfiVariables = bool false;
    boot.loader.grub.enable = bool true;
    boot.initrd.availableKernelModules = strings;
    boot.initrd.kernelModules = strings;
    boot.kernelModules = strings;
    boot.kernelParams = strings;
    fileSystems = loose { };
    swapDevices = loose [ ];
    services.openssh.enable = bool false;
    services.udev.extraRules = mkOption {
      type = types.lines;
      default = "";
    };
    hardware.cpu.intel.updateMicrocode = bool false;
    hardware.cpu.amd.updateMicrocode = bool false;
    virtualisation.containers.enable = bool false;

    # nixos/modules/security/misc.nix (NixOS/nixpkgs@0fae3824): allowUserNamespaces defaults
    # to true (false sets user.max_user_namespaces = 0); unprivilegedUsernsClone defaults to
    # false and only sets kernel.unprivileged_userns_clone, a sysctl of linux_hardened.
    security.allowUserNamespaces = bool true;
    security.unprivilegedUsernsClone = bool false;
  };

  config.system.build.toplevel =
    let
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
    in
    if failed != [ ] then
      throw "\nFailed assertions:\n${lib.concatMapStringsSep "\n" (m: "- ${m}") failed}"
    else
      lib.showWarnings config.warnings (pkgs.writeText "nixos-system-stub"
        (builtins.toJSON (map toString config.environment.systemPackages)));
}
