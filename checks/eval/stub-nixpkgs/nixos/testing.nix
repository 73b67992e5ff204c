# Options a NixOS VM test node has besides the system's own (nixos/modules/virtualisation/
# qemu-vm.nix, added by the test framework): only the ones our tests set. Not checked
# against source.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.virtualisation = {
    memorySize = mkOption {
      type = types.ints.positive;
      default = 1024;
    };
    diskSize = mkOption {
      type = types.ints.positive;
      default = 1024;
    };
    cores = mkOption {
      type = types.ints.positive;
      default = 1;
    };
  };
}
