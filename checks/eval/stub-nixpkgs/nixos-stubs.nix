# The parts of NixOS the flake's configurations touch beyond checks/eval/stubs.nix: the
# nixpkgs.* options that make `pkgs`, a freeform root that accepts any other NixOS option
# (hardware.nvidia, users.users, ...), and a system.build.toplevel that fails on failed
# assertions like NixOS does.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  freeformType = types.attrsOf types.anything;

  options = {
    nixpkgs.hostPlatform = mkOption { type = types.str; };
    nixpkgs.overlays = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    nixpkgs.config = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    system.build.toplevel = mkOption {
      type = types.unspecified;
      readOnly = true;
    };
  };

  config = {
    _module.args.pkgs = import ./default.nix {
      system = config.nixpkgs.hostPlatform;
      inherit (config.nixpkgs) overlays config;
    };
    system.build.toplevel =
      let
        failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
      in
      if failed != [ ] then throw "Failed assertions:\n- ${lib.concatStringsSep "\n- " failed}"
      else {
        type = "derivation";
        name = "nixos-system-stub";
        outPath = "/nix/store/00000000000000000000000000000000-nixos-system-stub";
        drvPath = "/nix/store/00000000000000000000000000000000-nixos-system-stub.drv";
      };
  };
}
