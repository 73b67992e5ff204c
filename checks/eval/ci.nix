# Entry point of the evaluation cases (checks/eval/cases.nix) where no nixpkgs tree is
# available: the flake's nixosModules.default on the NixOS stand-in, with nixpkgs' real
# lib.evalModules. Returns the list of check results.
#   nix-instantiate --eval --strict --json checks/eval/ci.nix \
#     --arg stubNixpkgs /tmp/stub --arg flakeDir ./.
{ stubNixpkgs, flakeDir }:
let
  inherit (import ./flake.nix { inherit stubNixpkgs flakeDir; }) lib self;
in
import ./cases.nix {
  inherit lib;
  flakePackages = self.packages;
  evalWith = module: lib.nixosSystem { modules = [ self.nixosModules.default module ]; };
}
