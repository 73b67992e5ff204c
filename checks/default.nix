# Checks for every system: the packages build, clippy, rustfmt, the Rust tests, Nix lint.
{ pkgs }:
let
  inherit (pkgs) lib;
  inherit (pkgs.nanna-coder) src;

  nixFiles = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.fileFilter (file: file.hasExt "nix") ../.;
  };
in
{
  inherit (pkgs) nanna-coder nanna nanna-deploy nanna-scripted-llm;

  clippy = pkgs.nanna-coder.overrideAttrs (old: {
    pname = "nanna-coder-clippy";
    nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
    buildPhase = ''
      cargo clippy --workspace --all-targets --offline -- -D warnings
    '';
    installPhase = ''
      touch $out
    '';
    doCheck = false;
    doInstallCheck = false;
  });

  cargo-test = pkgs.nanna-coder.overrideAttrs (old: {
    pname = "nanna-coder-tests";
    doCheck = true;
    # nanna-image's tests read shared-library lists with `ldd`.
    nativeCheckInputs = (old.nativeCheckInputs or [ ])
      ++ lib.optional pkgs.stdenv.hostPlatform.isLinux (lib.getBin pkgs.stdenv.cc.libc);
    # Engine and llama.cpp tests skip themselves: NANNA_TEST_* is unset in the sandbox.
    preCheck = ''
      export HOME=$TMPDIR
    '';
  });

  rustfmt = pkgs.runCommand "nanna-coder-rustfmt" { nativeBuildInputs = [ pkgs.rustfmt ]; } ''
    cd ${src}
    find crates -name '*.rs' -print0 | xargs -0 rustfmt --check --edition 2024
    touch $out
  '';

  nix-lint = pkgs.runCommand "nanna-coder-nix-lint"
    { nativeBuildInputs = [ pkgs.deadnix pkgs.nixpkgs-fmt ]; } ''
    cd ${nixFiles}
    find . -name '*.nix' -print0 | xargs -0 deadnix --fail
    find . -name '*.nix' -print0 | xargs -0 nixpkgs-fmt --check
    touch $out
  '';
}
