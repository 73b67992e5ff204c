# Entry point of the CI evaluation checks: runs checks/eval/cases.nix against the module
# with nixpkgs' lib and stub option declarations. Returns the list of check results.
#   nix-instantiate --eval --strict --json checks/eval/ci.nix --arg lib 'import <lib dir>'
{ lib }:
import ./cases.nix {
  inherit lib;
  evalWith = { system, module }:
    let
      pkgs = import ./stub-pkgs.nix { inherit lib system; };
      result = lib.evalModules {
        modules = [
          ./stubs.nix
          ../../modules/nanna-coder.nix
          module
          { _module.args.pkgs = pkgs; }
        ];
      };
    in
    {
      inherit (result) config;
      inherit pkgs;
    };
}
