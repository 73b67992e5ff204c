# A stand-in for the parts of NixOS that services.nanna-coder, the flake's example hosts and
# its VM test nodes touch, evaluated with nixpkgs' real lib.evalModules. Nothing here is
# copied from nixpkgs: each module reproduces, in our own words, the behaviour of the named
# upstream file that our module or our checks depend on, and cites the lines it follows.
#
# Which upstream text was read. The index of public sources has no copy of the pinned
# revision (nixos-unstable c59305ba, flake.lock), so each file was read at the newest
# revision the index holds:
#
# | upstream file | repository @ commit |
# |---|---|
# | nixos/modules/services/misc/ollama.nix | NixOS/nixpkgs @ f2a7dbae |
# | nixos/modules/virtualisation/oci-containers.nix | Swarsel/nixpkgs @ 4aa6836a (1) |
# | nixos/modules/virtualisation/podman/default.nix | Swarsel/nixpkgs @ 4aa6836a |
# | nixos/modules/virtualisation/docker.nix | Swarsel/nixpkgs @ 4aa6836a |
# | nixos/modules/services/hardware/nvidia-container-toolkit/default.nix | Swarsel/nixpkgs @ 4aa6836a |
# | nixos/modules/hardware/graphics.nix | Swarsel/nixpkgs @ 4aa6836a |
# | nixos/modules/services/hardware/amdgpu.nix | Swarsel/nixpkgs @ 4aa6836a |
# | nixos/modules/misc/nixpkgs.nix, misc/nixpkgs/read-only.nix, misc/meta.nix | Swarsel/nixpkgs @ 4aa6836a |
# | modules/generic/meta-maintainers.nix | NixOS/nixpkgs @ 453a7b57 |
# | nixos/lib/eval-config.nix | NixOS/nixpkgs @ 9bcb2eb4 |
# | nixos/lib/systemd-unit-options.nix | faukah/nixpkgs @ 3b20077c (1) |
# | nixos/lib/test-driver/src/test_driver/machine/__init__.py | NixOS/nixpkgs @ 019697db |
#
# (1) A fork of NixOS/nixpkgs: the index holds only 2022-2024 copies of these files in
#     NixOS/nixpkgs itself, older than features we rely on (imageStream, serviceName,
#     devices, podman.sdnotify).
#
# Behaviour marked "not checked against source" was written from general knowledge of NixOS
# and not compared with upstream text in this pass.
{ lib }:
let
  baseModules = [
    ./misc.nix
    ./nixpkgs.nix
    ./systemd.nix
    ./users.nix
    ./ollama.nix
    ./oci-containers.nix
    ./podman.nix
    ./docker.nix
    ./nvidia-container-toolkit.nix
    ./graphics.nix
    ./testing.nix
  ];
in
{
  # lib.nixosSystem / nixos/lib/eval-config.nix (NixOS/nixpkgs@9bcb2eb4, lines 11-73):
  # evaluates the base modules plus the user's; a `pkgs` argument becomes a normal-priority
  # definition of `nixpkgs.pkgs` (so the user's nixpkgs.overlays are still appended to it,
  # see ./nixpkgs.nix); the result also carries `pkgs` (lines 130-138). nixpkgs' flake calls
  # it with `system = null`; the legacy `system` argument is not modelled.
  nixosSystem = { modules ? [ ], pkgs ? null, specialArgs ? { }, ... }@args:
    assert lib.assertMsg (!(args ? system) || args.system == null)
      "the NixOS stand-in models lib.nixosSystem as nixpkgs' flake calls it (system = null); set nixpkgs.hostPlatform instead";
    let
      evaluated = lib.evalModules {
        inherit specialArgs;
        class = "nixos";
        modules = baseModules ++ modules ++ lib.optional (pkgs != null) {
          nixpkgs.pkgs = pkgs;
        };
      };
    in
    evaluated // { inherit (evaluated._module.args) pkgs; };

  # nixpkgs' flake output `nixosModules.readOnlyPkgs` (misc/nixpkgs/read-only.nix).
  readOnlyPkgs = ./nixpkgs-read-only.nix;

  inherit baseModules;
}
