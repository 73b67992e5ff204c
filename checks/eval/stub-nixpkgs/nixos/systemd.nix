# systemd.services, following nixos/lib/systemd-unit-options.nix (faukah/nixpkgs@3b20077c):
#   - `unitOption` (lines 54-60), the type of every serviceConfig/unitConfig entry: when
#     any definition of an entry is a list, all definitions are concatenated (a single
#     value counts as a one-element list); otherwise all definitions must be equal. The
#     module system drops definitions of lower priority first, so `mkForce` is the only way
#     to *narrow* a list another module set (e.g. services.ollama's DeviceAllow), and two
#     different scalars (e.g. PrivateDevices = false vs true) are a conflict error;
#   - dependencies (wantedBy, requiredBy, after, before, wants, requires, bindsTo, partOf)
#     are lists of unit names and concatenate;
#   - `environment` holds strings, paths or packages, null unsets;
#   - `script` becomes ExecStart and `preStart` a list entry of ExecStartPre (serviceOptions'
#     config block, later in the same file; its lines were not counted). Here the generated
#     job script is a marker string "unit-script-<unit>-<phase>" instead of a derivation.
# Unit file rendering and the checkService assertions on Type/Restart are not modelled.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  unitNames = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      if builtins.any (d: builtins.isList d.value) defs
      then builtins.concatMap (d: lib.toList d.value) defs
      else lib.mergeEqualOption loc defs;
  };
  lines = mkOption {
    type = types.lines;
    default = "";
  };
  service = { name, config, ... }: {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      description = mkOption {
        type = types.str;
        default = "";
      };
      wantedBy = unitNames;
      requiredBy = unitNames;
      after = unitNames;
      before = unitNames;
      wants = unitNames;
      requires = unitNames;
      bindsTo = unitNames;
      partOf = unitNames;
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
      };
      path = mkOption {
        type = types.listOf (types.oneOf [ types.package types.str ]);
        default = [ ];
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      restartTriggers = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
      };
      startAt = mkOption {
        type = types.either types.str (types.listOf types.str);
        default = [ ];
      };
      script = lines;
      preStart = lines;
      postStart = lines;
      preStop = lines;
      postStop = lines;
    };
    config = lib.mkMerge [
      (lib.mkIf (config.preStart != "") { serviceConfig.ExecStartPre = [ "unit-script-${name}-pre-start" ]; })
      (lib.mkIf (config.script != "") { serviceConfig.ExecStart = "unit-script-${name}-start"; })
      (lib.mkIf (config.postStart != "") { serviceConfig.ExecStartPost = [ "unit-script-${name}-post-start" ]; })
      (lib.mkIf (config.preStop != "") { serviceConfig.ExecStop = "unit-script-${name}-pre-stop"; })
      (lib.mkIf (config.postStop != "") { serviceConfig.ExecStopPost = "unit-script-${name}-post-stop"; })
    ];
  };
in
{
  options.systemd = {
    services = mkOption {
      type = types.attrsOf (types.submodule service);
      default = { };
    };
    sockets = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    # systemd.tmpfiles.rules: lines of tmpfiles.d(5); not checked against source.
    tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
}
