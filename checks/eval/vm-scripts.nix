# The VM tests' Python scripts and node names, evaluated without nixpkgs (a handful of fake
# packages stand in for what the scripts interpolate), so that CI can check them with
# checks/eval/check-test-script.py even where no nixpkgs lib tree is available.
#   nix-instantiate --eval --strict --json checks/eval/vm-scripts.nix
let
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  image = name: tag: fake "stream-image" // {
    imageName = name;
    imageTag = tag;
  };
  pkgs = {
    testers.runNixOSTest = test: test;
    writeText = name: _text: fake name;
    writeShellApplication = { name, ... }: fake name;
    curl = fake "curl";
    nanna-scripted-llm = fake "nanna-scripted-llm";
    nanna-coder-images = {
      assistant = image "localhost/nanna-coder-assistant" "latest";
      mkModelServerImage = { name, tag, ... }: image name tag;
    };
  };
  args = { inherit pkgs; module = { }; };
  tests = {
    vm-native = import ../vm/native.nix args;
    vm-containers = import ../vm/containers.nix args;
    vm-containers-docker = import ../vm/containers.nix (args // { backend = "docker"; });
    vm-team = import ../vm/team.nix args;
  };
in
builtins.mapAttrs
  (_: test:
  {
    script = test.testScript;
    nodes = builtins.attrNames test.nodes;
  })
  tests
