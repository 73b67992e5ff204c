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
  tests = {
    vm-native = ../vm/native.nix;
    vm-containers = ../vm/containers.nix;
    vm-team = ../vm/team.nix;
  };
in
builtins.mapAttrs
  (_: file:
  let test = import file { inherit pkgs; module = { }; };
  in
  {
    script = test.testScript;
    nodes = builtins.attrNames test.nodes;
  })
  tests
