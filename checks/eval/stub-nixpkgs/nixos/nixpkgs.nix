# nixos/modules/misc/nixpkgs.nix (Swarsel/nixpkgs@4aa6836a): where the `pkgs` module
# argument comes from.
#   - nixpkgs.config merges definitions by recursive update (lines 16-49);
#   - nixpkgs.overlays is a list of functions (lines 51-56, 260-284);
#   - nixpkgs.hostPlatform is elaborated with lib.systems.elaborate (lines 205-222);
#   - without nixpkgs.pkgs, pkgs is nixpkgs imported with config, overlays and the
#     platform (lines 77-106); with nixpkgs.pkgs set, pkgs is that set with
#     nixpkgs.overlays appended (`appendOverlays`, line 108), and nixpkgs.config is ignored;
#   - `_module.args.pkgs` is defined at default priority (lines 377-387);
#   - an assertion fails when nixpkgs.pkgs is set and nixpkgs.config is not empty
#     (lines 434-448, counted by hand from the stored text).
# The legacy system/localSystem/crossSystem options and cross compilation are not modelled.
{ config, options, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.nixpkgs;
  opt = options.nixpkgs;

  configType = lib.mkOptionType {
    name = "nixpkgs-config";
    check = x: builtins.isAttrs x || builtins.isFunction x;
    merge = _loc: defs: lib.foldr (def: acc: lib.recursiveUpdate def.value acc) { } defs;
  };
  overlayType = lib.mkOptionType {
    name = "nixpkgs-overlay";
    check = builtins.isFunction;
    merge = lib.mergeOneOption;
  };

  finalPkgs =
    if opt.pkgs.isDefined then cfg.pkgs.appendOverlays cfg.overlays
    else
      import ../default.nix {
        system = cfg.hostPlatform.system;
        inherit (cfg) config overlays;
      };
in
{
  options.nixpkgs = {
    config = mkOption {
      type = configType;
      default = { };
    };
    overlays = mkOption {
      type = types.listOf overlayType;
      default = [ ];
    };
    hostPlatform = mkOption {
      type = types.either types.str types.attrs;
      apply = lib.systems.elaborate;
    };
    pkgs = mkOption { type = types.pkgs; };
  };

  config = {
    _module.args.pkgs = lib.mkOverride lib.modules.defaultOverridePriority finalPkgs;
    assertions = [{
      assertion = opt.pkgs.isDefined -> cfg.config == { };
      message = ''
        Your system configures nixpkgs with an externally created instance.
        `nixpkgs.config` options should be passed when creating the instance instead.'';
    }];
  };
}
