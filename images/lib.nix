# Image metadata shared by the Nix image builds, the NixOS module, the deploy app and CI.
#
# Pure data built from builtins only (no nixpkgs), so `.ci/nix-checks.sh` can evaluate it
# on a machine without nixpkgs and compare it with images/assistant.json,
# images/gpu-recipes.json and images/container-security.json, the contracts the Rust side
# reads too.
let
  spec = builtins.fromJSON (builtins.readFile ./assistant.json);

  # One row per accelerator (nvidia, amd, intel, none), in --gpu auto's order: devices,
  # groups, environment, images, nixpkgs packages (crates/nanna-deploy/src/recipe.rs).
  recipeList = (builtins.fromJSON (builtins.readFile ./gpu-recipes.json)).accelerators;
  recipes = builtins.listToAttrs (map (r: { inherit (r) name; value = r; }) recipeList);

  # How each service's container is confined, and where a workspace may not be
  # (crates/nanna-deploy/src/stack/confinement.rs): rendered below as engine flags for the
  # NixOS module's containers mode, as `nanna-deploy up` renders it as API requests.
  confinement = builtins.fromJSON (builtins.readFile ./container-security.json);

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
  inherit ociConfig modelServerName modelServerPort modelsDir recipes recipeList confinement;

  # The `podman run` / `docker run` flags (`backend`: "podman" or "docker") that confine
  # `service`'s container ("ollama" or "assistant") as `nanna-deploy up` confines it, from
  # its row of images/container-security.json; capabilities are dropped apart (NixOS'
  # oci-containers has an option for them). Each flag was run on Podman 4.3.1 and Docker
  # 20.10 (CLI 28.2) with the assistant image; why each is needed:
  # crates/nanna-deploy/README.md, "The assistant's sandbox".
  containerFlags = backend: service:
    let
      row = confinement.services.${service};
      when = cond: flags: if cond then flags else [ ];
      maskedPaths = map (m: m.path) confinement.sys_masked_paths;
      # `/proc` with nothing masked or read-only (bubblewrap's fresh /proc needs it), the
      # /sys paths still masked:
      # - Podman: `unmask=/proc/*` matches each default masked and read-only path, `mask=`
      #   adds paths (podman-run(1), --security-opt);
      # - Docker: its CLI turns `systempaths=unconfined` into empty masked and read-only
      #   path lists and has no flag that gives a list, so the /sys paths come back as
      #   read-only tmpfs mounts, which is how Docker masks a directory. Only paths the
      #   kernel makes on every host: a mount on a missing one fails the container (runc
      #   cannot create its mount point in /sys; measured). That leaves
      #   /sys/devices/virtual/powercap (RAPL energy counters) readable where it exists, to
      #   a user without capabilities; its energy_uj files are root-only since Linux 5.10.
      unmask = {
        podman = [
          "--security-opt=unmask=/proc/*"
          "--security-opt=mask=${builtins.concatStringsSep ":" maskedPaths}"
        ];
        docker = [ "--security-opt=systempaths=unconfined" ]
          ++ map (m: "--tmpfs=${m.path}:ro") (builtins.filter (m: m.on_every_host) confinement.sys_masked_paths);
      };
    in
    when row.no_new_privileges [ "--security-opt=no-new-privileges" ]
    ++ when row.read_only_rootfs ([ "--read-only" ]
    # Podman adds tmpfs mounts of its own on /tmp, /var/tmp and /run to a read-only
    # container unless told not to (podman-run(1), --read-only-tmpfs); the table names
    # exactly which paths stay writable, as `up` does (libpod's read_write_tmpfs).
    ++ when (backend == "podman") [ "--read-only-tmpfs=false" ])
    ++ map (t: "--tmpfs=${t.path}:${t.options}") row.tmpfs
    # The engine's init as PID 1 (Docker: docker-init, which nixpkgs' moby links to tini;
    # Podman: catatonit, virtualisation.containers' engine.init_path), reaping what the
    # command sandbox leaves to it.
    ++ when row.init [ "--init" ]
    # Docker's CLI reads the file and sends its content; the profile replaces Docker's
    # default, which refuses user namespaces to a container without CAP_SYS_ADMIN.
    ++ when (row.seccomp ? ${backend})
      [ "--security-opt=seccomp=${./. + "/${row.seccomp.${backend}.file}"}" ]
    ++ when (row.proc == "unmasked") unmask.${backend};

  # Why `path` cannot be the assistant's workspace, or null: refused where
  # `nanna-deploy up --workspace` refuses it (the table's `workspace`), and when it is
  # `home`, the owner's home directory (null: none), or a directory above it. Paths are compared as written, so
  # they must be normalized (nothing resolves links when NixOS builds the system).
  workspaceRefusal = path: home:
    let
      rules = confinement.workspace;
      parts = builtins.filter builtins.isString (builtins.split "/" path);
      # As Rust's Path::starts_with: whole components, the tree itself included.
      isBelow = tree: path == tree || builtins.substring 0 (builtins.stringLength tree + 1) path == "${tree}/";
      below = builtins.filter isBelow rules.refused_below;
    in
    if builtins.substring 0 1 path != "/" then "it is not an absolute path"
    else if path != "/" && builtins.any (p: builtins.elem p [ "" "." ".." ]) (builtins.tail parts) then
      "it is not a normalized absolute path (no trailing /, //, . or ..)"
    else if builtins.elem path rules.refused then
      "it is a system directory; mounting it would give the assistant the whole of it"
    else if below != [ ] then
      "it is inside ${builtins.head below}, which belongs to the system"
    else if home != null && path == home then
      "it is its owner's home directory, which holds keys and credentials (~/.ssh, ~/.config)"
    # A directory above the home gives the whole of it too (a home outside /home).
    else if home != null && builtins.substring 0 (builtins.stringLength path + 1) home == "${path}/" then
      "it holds its owner's home directory ${home}, which holds keys and credentials (~/.ssh, ~/.config)"
    else null;

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
