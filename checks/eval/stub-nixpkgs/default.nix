# A stand-in for `import nixpkgs { system; overlays; config; }` with every attribute the
# flake, its overlay, images, module, checks and VM tests use. Packages are fake
# derivations (never built); builders check the arguments they are given where it is
# cheap. `stdenv.hostPlatform` is the real lib.systems.elaborate of the system.
{ system ? localSystem.system or localSystem, localSystem ? "x86_64-linux", overlays ? [ ], config ? { } }:
let
  lib = import ./lib.nix;
  platform = lib.systems.elaborate system;

  # Unfree packages refuse to evaluate unless the config allows them, as nixpkgs'
  # check-meta does (not checked against source; the message is abridged).
  allowed = drv: !(drv.meta.unfree or false) || (config.allowUnfree or false)
    || (config.allowUnfreePredicate or (_: false)) drv;
  refuse = name: throw "Package ‘${name}’ has an unfree license, refusing to evaluate.";

  # A real but unbuildable derivation (instantiating it writes a .drv; building it fails),
  # so Nix's own flake checks accept it. `key` holds what distinguishes two packages of the
  # same name (an image's tag and config, a script's text); store paths in it become inputs.
  mkDrv = attrs:
    let
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      drv = builtins.derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" "echo 'a stand-in package from checks/eval/stub-nixpkgs cannot be built' >&2; exit 1" ];
        key = attrs.key or "";
      };
      ok = allowed attrs;
      self = builtins.removeAttrs attrs [ "passthru" "key" ]
        // {
        type = "derivation";
        inherit name system;
        outPath = if ok then drv.outPath else refuse name;
        drvPath = if ok then drv.drvPath else refuse name;
        outputs = [ "out" ];
        outputName = "out";
        meta = attrs.meta or { };
        overrideAttrs = f: mkDrv (attrs // (if builtins.isFunction f then f attrs else f));
        override = _: self;
      }
        // (attrs.passthru or { });
    in
    self;

  leaf = name: mkDrv { inherit name; meta.mainProgram = name; };
  leaves = names: lib.genAttrs names leaf;
  versioned = name: version: mkDrv {
    pname = name;
    inherit version;
    meta.mainProgram = name;
  };

  base = final: leaves [
    "cmake"
    "perl"
    "cacert"
    "bashInteractive"
    "bubblewrap"
    "coreutils"
    "diffutils"
    "findutils"
    "gitMinimal"
    "gnugrep"
    "mesa"
    "jq"
    "cargo"
    "rustc"
    "clippy"
    "rustfmt"
    "rust-analyzer"
    "deadnix"
    "statix"
    "nixpkgs-fmt"
    "curl"
    "parallel"
    "gawk"
    "gnused"
    "nvidia-container-toolkit"
  ] // {
    inherit lib system config overlays;
    pkgs = final;
    # lib.types.pkgs (the type of nixpkgs.pkgs) accepts only a set with this marker.
    _type = "pkgs";
    # nixpkgs' top level: appendOverlays re-evaluates nixpkgs with the overlays added after
    # the ones it was made with (what misc/nixpkgs.nix uses when nixpkgs.pkgs is set).
    appendOverlays = extra:
      if extra == [ ] then final
      else import ./default.nix { inherit system config; overlays = overlays ++ extra; };
    stdenv = {
      hostPlatform = platform;
      buildPlatform = platform;
      targetPlatform = platform;
      cc.libc = leaf "glibc";
    };
    callPackage = lib.callPackageWith final;

    # Versions: Docker >= 25 is what the container toolkit's CDI switch looks at; the
    # pinned nixpkgs was not inspected for the exact versions.
    docker = versioned "docker" "28.5.1";
    podman = versioned "podman" "5.6.2";

    ollama = mkDrv { name = "ollama"; meta.mainProgram = "ollama"; };
    ollama-cpu = mkDrv { name = "ollama-cpu"; meta.mainProgram = "ollama"; };
    ollama-vulkan = mkDrv { name = "ollama-vulkan"; meta.mainProgram = "ollama"; };
    # ollama-cuda links CUDA's unfree libraries.
    ollama-cuda = mkDrv { name = "ollama-cuda"; meta = { mainProgram = "ollama"; unfree = true; }; };
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
      mkDrv (env // { inherit name; key = script; });
    writeText = name: text: assert builtins.isString text; mkDrv { inherit name; key = text; };
    writeTextDir = path: text: assert builtins.isString text; mkDrv { name = baseNameOf path; key = text; };
    writeShellApplication = { name, text, runtimeInputs ? [ ], ... }:
      assert builtins.all lib.isDerivation runtimeInputs;
      mkDrv {
        inherit name;
        key = text + toString runtimeInputs;
        meta.mainProgram = name;
        passthru = { inherit text runtimeInputs; };
      };
    mkShell = { packages ? [ ], ... }:
      assert builtins.all lib.isDerivation packages;
      mkDrv { name = "nix-shell"; };
    formats.toml = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate = name: value: mkDrv {
        inherit name;
        key = builtins.toJSON value;
        passthru = { inherit value; };
      };
    };
    dockerTools.streamLayeredImage = { name, tag, config, contents ? [ ], passthru ? { }, ... }:
      assert builtins.all lib.isDerivation contents;
      mkDrv {
        name = "stream-${baseNameOf name}";
        key = "${name}:${tag} ${builtins.toJSON config} ${toString contents}";
        passthru = passthru // {
          imageName = name;
          imageTag = tag;
          inherit config contents;
        };
      };
    # testers.runNixOSTest: each node is a NixOS system whose pkgs is this package set,
    # read-only by default (node.pkgsReadOnly, nixos/lib/testing/nodes.nix; not read, but
    # confirmed by many public tests that turn it off to set nixpkgs.config or overlays).
    testers.runNixOSTest = { name, nodes, testScript, node ? { }, ... }:
      let
        readOnly = node.pkgsReadOnly or true;
        machines = lib.mapAttrs
          (_: n: lib.nixosSystem {
            modules = [ n ]
              ++ (if readOnly then [ (import ./nixos { inherit lib; }).readOnlyPkgs { nixpkgs.pkgs = final; } ]
            else [{ nixpkgs.hostPlatform = system; }]);
          })
          nodes;
      in
      mkDrv {
        name = "vm-test-run-${name}";
        passthru = {
          inherit testScript machines;
          toplevels = lib.mapAttrs (_: m: m.config.system.build.toplevel.name) machines;
        };
      };
  };
in
# nixpkgs 26.11 refuses x86_64-darwin as soon as anything is evaluated for it (error text
  # as quoted in public build logs; the throw is in nixpkgs' lib/trivial.nix after our lib
  # copy's date, not read).
if system == "x86_64-darwin" then throw "Nixpkgs 26.11 has dropped support for x86_64-darwin."
else lib.fix (lib.extends (lib.composeManyExtensions overlays) base)
