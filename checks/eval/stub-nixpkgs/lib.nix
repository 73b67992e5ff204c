# nixpkgs' lib (linked next to this file as ./lib by .ci/nix-checks.sh) plus stand-ins for
# what Nix 2.8 or the absent NixOS tree cannot provide: lib.fileset (needs
# builtins.readFileType, Nix >= 2.14) and lib.nixosSystem (evaluates the modules against
# the stub option declarations instead of NixOS).
(import ./lib).extend (final: prev: {
  fileset = prev.fileset // {
    unions = paths: { _stubFileset = paths; };
    fileFilter = _predicate: root: { _stubFileset = [ root ]; };
    toSource = { root, fileset }:
      let missing = builtins.filter (p: !builtins.pathExists p) fileset._stubFileset;
      in
      if missing != [ ] then throw "lib.fileset.toSource: missing ${toString missing}"
      else toString root;
  };

  nixosSystem = { modules, pkgs ? null, ... }:
    let
      evaluated = final.evalModules {
        modules = modules ++ [
          ./stubs.nix
          ./nixos-stubs.nix
          (final.optionalAttrs (pkgs != null) { _module.args.pkgs = final.mkForce pkgs; })
        ];
      };
    in
    evaluated // { inherit (evaluated._module.args) pkgs; };
})
