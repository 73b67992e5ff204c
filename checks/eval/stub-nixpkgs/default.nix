# A stand-in for `import nixpkgs { system; overlays; config; }` with every attribute the
# flake, its overlay, images, checks and VM tests use. Packages are fake derivations (never
# built); builders check the arguments they are given where it is cheap.
{ system ? "x86_64-linux", overlays ? [ ], config ? { } }:
let
  lib = import ./lib.nix;
  isDarwin = lib.hasSuffix "-darwin" system;

  mkDrv = attrs:
    let
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      hash = builtins.substring 0 32 (builtins.hashString "sha256" "${system}/${name}");
    in
    builtins.removeAttrs attrs [ "passthru" ]
    // {
      type = "derivation";
      inherit name system;
      outPath = "/nix/store/${hash}-${name}";
      drvPath = "/nix/store/${hash}-${name}.drv";
      meta = attrs.meta or { };
      overrideAttrs = f: mkDrv (attrs // (if builtins.isFunction f then f attrs else f));
    }
    // (attrs.passthru or { });

  leaf = name: mkDrv { inherit name; meta.mainProgram = name; };
  leaves = names: lib.genAttrs names leaf;

  base = final: leaves [
    "cmake"
    "perl"
    "cacert"
    "bashInteractive"
    "coreutils"
    "gitMinimal"
    "mesa"
    "jq"
    "cargo"
    "rustc"
    "clippy"
    "rustfmt"
    "rust-analyzer"
    "podman"
    "deadnix"
    "statix"
    "nixpkgs-fmt"
    "curl"
  ] // {
    inherit lib system config;
    pkgs = final;
    stdenv.hostPlatform = {
      inherit system isDarwin;
      isLinux = !isDarwin;
      isx86_64 = lib.hasPrefix "x86_64-" system;
    };
    stdenv.cc.libc = leaf "glibc";
    callPackage = lib.callPackageWith final;

    ollama = mkDrv { name = "ollama"; meta.mainProgram = "ollama"; };
    ollama-cpu = mkDrv { name = "ollama-cpu"; meta.mainProgram = "ollama"; };
    ollama-vulkan = mkDrv { name = "ollama-vulkan"; meta.mainProgram = "ollama"; };
    ollama-cuda = mkDrv { name = "ollama-cuda"; meta.mainProgram = "ollama"; };
    ollama-rocm = mkDrv { name = "ollama-rocm"; meta.mainProgram = "ollama"; };

    rustPlatform = {
      buildRustPackage = args:
        assert builtins.pathExists args.cargoLock.lockFile;
        assert builtins.isString args.src;
        mkDrv args;
      rustLibSrc = leaf "rust-lib-src";
    };
    runCommand = name: env: script:
      assert builtins.isString script;
      mkDrv (env // { inherit name; });
    writeText = name: text: assert builtins.isString text; mkDrv { inherit name; };
    writeTextDir = path: text: assert builtins.isString text; mkDrv { name = baseNameOf path; };
    writeShellApplication = { name, text, runtimeInputs ? [ ], ... }:
      assert builtins.all lib.isDerivation runtimeInputs;
      mkDrv {
        inherit name;
        meta.mainProgram = name;
        passthru = { inherit text; };
      };
    mkShell = { packages ? [ ], ... }:
      assert builtins.all lib.isDerivation packages;
      mkDrv { name = "nix-shell"; };
    formats.toml = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate = name: value: mkDrv { inherit name; passthru = { inherit value; }; };
    };
    dockerTools.streamLayeredImage = { name, tag, config, contents ? [ ], passthru ? { }, ... }:
      assert builtins.all lib.isDerivation contents;
      mkDrv {
        name = "stream-${baseNameOf name}";
        passthru = passthru // {
          imageName = name;
          imageTag = tag;
          inherit config contents;
        };
      };
    testers.runNixOSTest = { name, nodes, testScript, ... }:
      let
        machines = lib.mapAttrs
          (_: node: lib.nixosSystem { modules = [ node { nixpkgs.hostPlatform = system; } ]; pkgs = final; })
          nodes;
      in
      mkDrv {
        name = "vm-test-run-${name}";
        passthru = {
          inherit testScript;
          toplevels = lib.mapAttrs (_: m: m.config.system.build.toplevel.name) machines;
        };
      };
  };
in
lib.fix (lib.extends (lib.composeManyExtensions overlays) base)
