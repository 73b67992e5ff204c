# This flake's outputs evaluated against the stub nixpkgs (checks/eval/stub-nixpkgs, copied
# next to a nixpkgs lib tree by .ci/nix-checks.sh): what the other files here evaluate.
{ stubNixpkgs, flakeDir }:
rec {
  nixpkgs = {
    outPath = stubNixpkgs;
    lib = import (stubNixpkgs + "/lib.nix");
    nixosModules.readOnlyPkgs = (import (stubNixpkgs + "/nixos") { inherit lib; }).readOnlyPkgs;
  };
  inherit (nixpkgs) lib;
  flake = import (flakeDir + "/flake.nix");
  self = flake.outputs { inherit self nixpkgs; } // { outPath = flakeDir; };
}
