# nixpkgs' lib (a copy of a nixpkgs lib tree placed next to this file as ./lib by
# .ci/nix-checks.sh) plus stand-ins for what Nix 2.8 or the absent NixOS tree cannot
# provide: lib.fileset (needs builtins.readFileType, Nix >= 2.14) and lib.nixosSystem (the
# NixOS stand-in in ./nixos).
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

  inherit (import ./nixos { lib = final; }) nixosSystem;
})
