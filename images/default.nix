# OCI images built by Nix: the assistant (`nanna serve`) and the Ollama model server for
# each GPU kind. Every image is a `dockerTools.streamLayeredImage`: building it gives a
# script that writes a docker-archive tarball on stdout (`./result | podman load`).
{ lib
, pkgs
, stdenv
, dockerTools
, writeTextDir
, cacert
, nanna
}:
let
  meta = import ./lib.nix;

  # /etc/passwd, /etc/group (see images/lib.nix) and nsswitch.conf.
  accounts = writeTextDir "etc/passwd" meta.passwd;
  groups = writeTextDir "etc/group" meta.group;
  nsswitch = writeTextDir "etc/nsswitch.conf" ''
    passwd: files
    group: files
    hosts: files dns
  '';
  base = [ cacert accounts groups nsswitch ];

  # A model-server image around `package`, whose main program is started as `/bin/ollama`.
  mkModelServerImage =
    { variant
    , package
    , extraContents ? [ ]
    , name ? meta.modelServerName
    , tag ? variant
    }:
    dockerTools.streamLayeredImage {
      inherit name tag;
      contents = base ++ [ package ] ++ extraContents;
      fakeRootCommands = ''
        mkdir -p ./root/.ollama ./tmp
        chmod 1777 ./tmp
      '';
      config = (meta.modelServer variant).config;
      passthru = { inherit variant package; };
    };

  # Variants that build on this platform (the recipe table says where, e.g. CUDA and ROCm
  # images only on x86_64), with their extra contents (the Vulkan variant ships Mesa).
  supported = v: v.imagePlatforms == null || builtins.elem stdenv.hostPlatform.system v.imagePlatforms;

  modelServers = lib.mapAttrs'
    (variant: v: lib.nameValuePair "ollama-${variant}" (mkModelServerImage {
      inherit variant;
      package = pkgs.${v.package};
      extraContents = map (name: pkgs.${name}) v.imagePackages;
    }))
    (lib.filterAttrs (_: supported) meta.variants);
in
modelServers
  // {
  inherit mkModelServerImage;

  # nanna plus the packages of images/assistant.json (bubblewrap, a shell, coreutils, git...),
  # linked into /bin as the Rust image builder installs them. nanna finds bwrap through its
  # wrapper's NANNA_BWRAP default (flake.nix) or /bin.
  assistant = dockerTools.streamLayeredImage {
    inherit (meta.assistant) name tag config;
    contents = base ++ [ nanna ] ++ map (attr: pkgs.${attr}) meta.assistant.packages;
    fakeRootCommands = ''
      mkdir -p ./workspace ./home/nanna/.config/nanna ./tmp
      chown -R 1000:1000 ./workspace ./home/nanna
      chmod 1777 ./tmp
    '';
    passthru = { inherit nanna; };
  };
}
