# nixos/modules/misc/nixpkgs/read-only.nix (Swarsel/nixpkgs@4aa6836a), nixpkgs' flake output
# nixosModules.readOnlyPkgs, which is what nixpkgs recommends for a host that brings its own
# `pkgs`, and what testers.runNixOSTest uses for its nodes by default:
#   - it replaces ./nixpkgs.nix (disabledModules, lines 80-82);
#   - nixpkgs.config and nixpkgs.overlays become `types.unique` (lines 22-29, 49-56): they
#     are set from `pkgs` itself (lines 74-77), so any other definition, e.g. a module that
#     adds an overlay, is an evaluation error ("nixpkgs.overlays is set to read-only");
#   - hostPlatform is read-only and taken from pkgs (lines 40-47, 76);
#   - `_module.args.pkgs` is nixpkgs.pkgs, after forcing the options above (lines 67-72).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.nixpkgs;
in
{
  disabledModules = [ ./nixpkgs.nix ];

  options.nixpkgs = {
    config = mkOption {
      internal = true;
      type = types.unique { message = "nixpkgs.config is set to read-only"; } types.anything;
    };
    overlays = mkOption {
      internal = true;
      type = types.unique { message = "nixpkgs.overlays is set to read-only"; } types.anything;
    };
    hostPlatform = mkOption {
      internal = true;
      readOnly = true;
    };
    pkgs = mkOption { type = types.pkgs; };
  };

  config = {
    _module.args.pkgs =
      builtins.seq cfg.config (builtins.seq cfg.overlays (builtins.seq cfg.hostPlatform cfg.pkgs));
    nixpkgs.config = cfg.pkgs.config;
    nixpkgs.overlays = cfg.pkgs.overlays;
    nixpkgs.hostPlatform = cfg.pkgs.stdenv.hostPlatform;
  };
}
