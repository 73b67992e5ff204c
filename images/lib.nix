# Image metadata shared by the Nix image builds, the NixOS module, the deploy app and CI.
#
# Pure data built from builtins only (no nixpkgs), so `.ci/nix-checks.sh` can evaluate it
# on a machine without nixpkgs and compare it with images/assistant.json and
# images/gpu-recipes.json, the contracts the Rust side reads too.
let
  spec = builtins.fromJSON (builtins.readFile ./assistant.json);

  # One row per accelerator (nvidia, amd, intel, none), in --gpu auto's order: devices,
  # groups, environment, images, nixpkgs packages (crates/nanna-deploy/src/recipe.rs).
  recipeList = (builtins.fromJSON (builtins.readFile ./gpu-recipes.json)).accelerators;
  recipes = builtins.listToAttrs (map (r: { inherit (r) name; value = r; }) recipeList);

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

  # The recipe of each model-server variant (cpu, cuda, rocm, vulkan).
  recipeOfVariant = builtins.listToAttrs
    (map (r: { name = r.nix.variant; value = r; }) recipeList);

  # Environment of each model-server variant: the recipe's (e.g. OLLAMA_VULKAN) plus what
  # this image's layout needs (where CDI mounts the NVIDIA libraries; Mesa's ICD files).
  variantEnv = variant:
    let r = recipeOfVariant.${variant}; in r.env // r.nix.image_env;

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
    } // variantEnv variant;
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
  inherit ociConfig modelServerName modelServerPort modelsDir recipes recipeList;

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

  # Model-server variants: the GPU kind they serve, the nixpkgs attribute they package,
  # the extra nixpkgs packages of their image and where the image builds (null: anywhere).
  variants = builtins.mapAttrs
    (_: r: {
      gpu = r.name;
      package = r.nix.ollama_package;
      imagePackages = r.nix.image_packages;
      imagePlatforms = r.nix.image_platforms;
    })
    recipeOfVariant;

  # The model-server variant serving each `gpu` value.
  variantForGpu = builtins.mapAttrs (_: r: r.nix.variant) recipes;

  # The model-server image of one variant.
  modelServer = variant: {
    name = modelServerName;
    tag = variant;
    config = ociConfig (modelServerSpec variant) // {
      Volumes = { ${modelsDir} = { }; };
    };
  };
}
