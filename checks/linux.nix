# Linux-only checks: the module's evaluation cases on the real NixOS module system, the
# example hosts, the images and the NixOS VM tests.
{ pkgs, self, lib, nixosSystem }:
let
  results = import ./eval/cases.nix {
    inherit lib;
    flakePackages = self.packages;
    evalWith = module: nixosSystem { modules = [ self.nixosModules.default module ]; };
  };
  failed = builtins.filter (r: !r.ok) results;
  report = lib.concatMapStrings
    (r: "${if r.ok then "ok  " else "FAIL"} ${r.case}: ${r.what}${lib.optionalString (!r.ok) " (${r.detail})"}\n")
    results;

  hostReport = lib.concatMapStrings
    (name:
      let toplevel = self.nixosConfigurations.${name}.config.system.build.toplevel;
      in "${name} ${builtins.unsafeDiscardStringContext toplevel.drvPath}\n")
    (builtins.attrNames self.nixosConfigurations);

  # The VM tests import the module the way users do (the flake's nixosModules.default);
  # runNixOSTest gives every node this flake's package set, read-only.
  vmArgs = {
    inherit pkgs;
    module = self.nixosModules.default;
  };
in
{
  # services.nanna-coder: package, devices and groups per gpu and mode; bad combinations
  # fail with their assertion (same cases CI runs against stubs).
  module-eval =
    if failed == [ ] then pkgs.writeText "nanna-coder-module-eval" report
    else throw "services.nanna-coder evaluation checks failed:\n${report}";

  # Every example host evaluates to a system derivation (not built).
  hosts-eval = pkgs.writeText "nanna-coder-hosts" hostReport;

  assistant-image = pkgs.nanna-coder-images.assistant;
  ollama-cpu-image = pkgs.nanna-coder-images.ollama-cpu;

  vm-native = import ./vm/native.nix vmArgs;
  vm-containers = import ./vm/containers.nix vmArgs;
  vm-containers-docker = import ./vm/containers.nix (vmArgs // { backend = "docker"; });
  vm-team = import ./vm/team.nix vmArgs;
}
