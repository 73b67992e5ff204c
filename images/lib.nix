# Image metadata shared by the Nix image builds, the NixOS module, the deploy app and CI.
#
# Pure data built from builtins only (no nixpkgs), so `.ci/nix-checks.sh` can evaluate it
# on a machine without nixpkgs and compare it with images/assistant.json, the contract the
# Rust image builder reads too.
let
  spec = builtins.fromJSON (builtins.readFile ./assistant.json);

  # The OCI image configuration for a spec in images/assistant.json's shape.
  ociConfig = s: {
    Entrypoint = s.entrypoint;
    Cmd = s.cmd;
    User = s.user;
    WorkingDir = s.workdir;
    Env = map (name: "${name}=${s.env.${name}}") (builtins.attrNames s.env);
    ExposedPorts = builtins.listToAttrs (
      map (port: { name = "${toString port}/tcp"; value = { }; }) s.exposed_ports
    );
    Labels = s.labels;
  };

  modelServerName = "localhost/nanna-coder-ollama";
  modelServerPort = 11434;
  modelsDir = "/root/.ollama";

  # Extra environment of each model-server variant.
  variantEnv = {
    cpu = { };
    cuda = {
      NVIDIA_VISIBLE_DEVICES = "all";
      NVIDIA_DRIVER_CAPABILITIES = "compute,utility";
      # Where CDI specs (nvidia-ctk) mount the host driver's libraries.
      LD_LIBRARY_PATH = "/run/opengl-driver/lib:/usr/lib64:/usr/lib/x86_64-linux-gnu:/usr/lib/aarch64-linux-gnu:/usr/lib";
    };
    rocm = { };
    vulkan = {
      OLLAMA_VULKAN = "1";
      # Mesa's Vulkan drivers are in the image; the loader finds their ICD files here.
      XDG_DATA_DIRS = "/share";
    };
  };

  modelServerSpec = variant: {
    name = modelServerName;
    tag = variant;
    entrypoint = [ "/bin/ollama" ];
    cmd = [ "serve" ];
    user = "0:0";
    workdir = "/root";
    env = {
      HOME = "/root";
      OLLAMA_HOST = "0.0.0.0:${toString modelServerPort}";
      OLLAMA_MODELS = "${modelsDir}/models";
      SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt";
    } // variantEnv.${variant};
    exposed_ports = [ modelServerPort ];
    labels = {
      "org.opencontainers.image.title" = "nanna-coder-ollama";
      "org.opencontainers.image.description" = "Ollama model server (${variant}) for Nanna Coder";
      "org.opencontainers.image.source" = spec.labels."org.opencontainers.image.source";
      "org.opencontainers.image.licenses" = "MIT";
      "dev.nanna.service" = "model-server";
      "dev.nanna.gpu" = variant;
    };
  };
in
{
  inherit ociConfig modelServerName modelServerPort modelsDir;

  # Accounts of every image: root, the assistant's user `nanna` (uid 1000, as `user` in
  # images/assistant.json) and the GPU groups with NixOS' numeric ids.
  passwd = ''
    root:x:0:0:root:/root:/bin/sh
    nanna:x:1000:1000:Nanna Coder:/home/nanna:/bin/sh
    nobody:x:65534:65534:nobody:/var/empty:/bin/false
  '';
  group = ''
    root:x:0:
    video:x:26:
    render:x:303:
    nanna:x:1000:
    nogroup:x:65534:
  '';

  # The assistant image, exactly as images/assistant.json describes it; `packages` are the
  # nixpkgs attributes of its programs besides nanna (bubblewrap first: it confines the
  # `shell` tool's commands), each once.
  assistant = {
    inherit (spec) name tag;
    config = ociConfig spec;
    packages = builtins.foldl'
      (names: p: if builtins.elem p.nix names then names else names ++ [ p.nix ])
      [ ]
      spec.packages;
  };

  # Model-server variants: the GPU kind they serve and the nixpkgs attribute they package.
  variants = {
    cpu = { gpu = "none"; package = "ollama-cpu"; };
    cuda = { gpu = "nvidia"; package = "ollama-cuda"; };
    rocm = { gpu = "amd"; package = "ollama-rocm"; };
    vulkan = { gpu = "intel"; package = "ollama-vulkan"; };
  };

  # The model-server variant serving each `gpu` value.
  variantForGpu = {
    none = "cpu";
    nvidia = "cuda";
    amd = "rocm";
    intel = "vulkan";
  };

  # The model-server image of one variant.
  modelServer = variant: {
    name = modelServerName;
    tag = variant;
    config = ociConfig (modelServerSpec variant) // {
      Volumes = { ${modelsDir} = { }; };
    };
  };
}
