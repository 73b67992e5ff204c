{
  description = "Nanna Coder: a local-first AI coding assistant, its deployer, OCI images and NixOS module";

  # nixos-unstable: the workspace needs rustc >= 1.95 (sysinfo 0.40); see docs/nix.md.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      linuxSystems = [ "x86_64-linux" "aarch64-linux" ];
      # nixpkgs 26.11 dropped x86_64-darwin: importing it for that system throws.
      darwinSystems = [ "aarch64-darwin" ];
      allSystems = linuxSystems ++ darwinSystems;

      # nixpkgs with this flake's overlay. CUDA (the NVIDIA model-server image and
      # ollama-cuda) is unfree, hence allowUnfree for the flake's own package set.
      pkgsFor = system: import nixpkgs {
        inherit system;
        overlays = [ self.overlays.default ];
        config.allowUnfree = true;
      };
      # One package set per system, shared by every output.
      pkgsBySystem = lib.genAttrs allSystems pkgsFor;
      forSystems = systems: f: lib.genAttrs systems (system: f pkgsBySystem.${system});

      cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);
      version = cargoToml.workspace.package.version;

      # The whole Cargo workspace; the per-binary packages link into it.
      workspace = { lib, stdenv, rustPlatform, cmake, perl, bubblewrap }:
        rustPlatform.buildRustPackage {
          pname = "nanna-coder";
          inherit version;
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              ./crates
              ./images/assistant.json
              ./images/assistant-seccomp.json
              ./images/gpu-recipes.json
            ];
          };
          cargoLock.lockFile = ./Cargo.lock;
          # aws-lc-sys (rustls' default crypto provider) builds C code with CMake.
          nativeBuildInputs = [ cmake perl ];
          # nanna's `shell` tool runs every command under bubblewrap: the bubblewrap nanna
          # uses when NANNA_BWRAP is unset, compiled in (nanna-sandbox's support.rs). Being a
          # store path in the binary, it is also in nanna's runtime closure, so nanna finds
          # it without a wrapper or PATH entry, and the assistant image carries it.
          env = lib.optionalAttrs stdenv.hostPlatform.isLinux {
            NANNA_DEFAULT_BWRAP = "${bubblewrap}/bin/bwrap";
          };
          # The test suite runs in checks.<system>.cargo-test (it needs a writable HOME).
          doCheck = false;
          meta = {
            description = "Local-first AI coding assistant (nanna, nanna-deploy, nanna-scripted-llm)";
            homepage = "https://github.com/dominicburkart/nanna-coder";
            license = lib.licenses.mit;
            mainProgram = "nanna";
            platforms = lib.platforms.linux ++ lib.platforms.darwin;
          };
        };

      overlay = final: _prev:
        let
          nanna-coder = final.callPackage workspace { };
          binary = name: description:
            final.runCommand "${name}-${version}"
              {
                meta = nanna-coder.meta // { inherit description; mainProgram = name; };
                passthru = { inherit nanna-coder; };
              } ''
              mkdir -p $out/bin
              ln -s ${nanna-coder}/bin/${name} $out/bin/${name}
            '';
        in
        {
          inherit nanna-coder;
          nanna = binary "nanna" "Nanna Coder agent CLI";
          nanna-deploy = binary "nanna-deploy" "Deploys Nanna Coder's containers (Podman or Docker)";
          nanna-scripted-llm = binary "nanna-scripted-llm" "Scripted Ollama-compatible server for tests";
          nanna-coder-images = final.callPackage ./images { };
        };

      imageMeta = import ./images/lib.nix;

      # `nix run .#deploy`: nanna-deploy with this flake's images, so no registry is needed.
      deployApp = pkgs:
        let
          images = pkgs.nanna-coder-images;
          # Model-server images are realised on demand from their .drv: building every GPU
          # variant up front would build CUDA and ROCm for everybody.
          # unsafeDiscardOutputDependency keeps the .drv (and the .drv files it needs) in
          # the wrapper's closure without building the image, so `nix-store --realise`
          # still finds it after a garbage collection.
          modelDrvs = lib.concatStringsSep "\n    " (lib.mapAttrsToList
            (variant: _: "${variant}) model_drv=${builtins.unsafeDiscardOutputDependency images."ollama-${variant}".drvPath} ;;")
            (lib.filterAttrs (variant: _: images ? "ollama-${variant}") imageMeta.variants));
          # One case per accelerator of images/gpu-recipes.json, aliases included (cuda...).
          variantCases = lib.concatMapStringsSep "\n  "
            (r: "${lib.concatStringsSep "|" ([ r.name ] ++ r.aliases)}) gpu=${r.name}; variant=${r.nix.variant} ;;")
            imageMeta.recipeList;
          gpuNames = lib.concatMapStringsSep ", " (r: r.name) imageMeta.recipeList;
        in
        pkgs.writeShellApplication {
          name = "nanna-coder-deploy";
          runtimeInputs = [ pkgs.nanna-deploy pkgs.jq pkgs.coreutils ];
          text = ''
            # Default subcommand: `up` when the first argument is a flag (or there is none).
            if [ "$#" -eq 0 ] || [[ "$1" == -* ]]; then
              set -- up "$@"
            fi
            if [ "$1" != up ]; then
              exec nanna-deploy "$@"
            fi
            shift

            gpu="''${GPU_SUPPORT:-}"
            user_ollama_image=""
            user_harness_image=""
            args=()
            while [ "$#" -gt 0 ]; do
              case "$1" in
                --gpu)
                  [ "$#" -ge 2 ] || { echo "nanna-coder-deploy: --gpu needs a value" >&2; exit 2; }
                  gpu="$2"; shift 2 ;;
                --gpu=*) gpu="''${1#--gpu=}"; shift ;;
                --ollama-image|--ollama-image=*) user_ollama_image=1; args+=("$1"); shift ;;
                --harness-image|--harness-image=*) user_harness_image=1; args+=("$1"); shift ;;
                *) args+=("$1"); shift ;;
              esac
            done
            # What is left goes to nanna-deploy unchanged.
            set -- "''${args[@]}"

            if [ -z "$gpu" ] || [ "$gpu" = auto ]; then
              gpu=$(nanna-deploy detect --json --no-engine 2>/dev/null | jq -r '.recommendation.gpu // empty' || true)
              if [ -z "$gpu" ]; then
                echo "nanna-coder-deploy: could not detect the GPU; using the CPU image (pass --gpu ${lib.concatMapStringsSep "|" (r: r.name) imageMeta.recipeList})" >&2
                gpu=none
              fi
              echo "nanna-coder-deploy: detected GPU: $gpu" >&2
            fi
            case "$gpu" in
              ${variantCases}
              *) echo "nanna-coder-deploy: unknown --gpu '$gpu' (expected ${gpuNames} or auto)" >&2; exit 2 ;;
            esac

            tmp=$(mktemp -d "''${TMPDIR:-/tmp}/nanna-coder-deploy.XXXXXX")
            trap 'rm -rf "$tmp"' EXIT
            extra=(--gpu "$gpu")

            if [ -z "$user_harness_image" ]; then
              echo "nanna-coder-deploy: writing the assistant image" >&2
              ${images.assistant} > "$tmp/assistant.tar"
              extra+=(--image-archive "$tmp/assistant.tar" --harness-image ${imageMeta.assistant.name}:${imageMeta.assistant.tag})
            fi

            if [ -z "$user_ollama_image" ]; then
              model_drv=""
              case "$variant" in
                ${modelDrvs}
              esac
              if [ -z "$model_drv" ]; then
                echo "nanna-coder-deploy: no $variant model-server image is built for ${pkgs.stdenv.hostPlatform.system}; pass --ollama-image REF" >&2
                exit 2
              fi
              echo "nanna-coder-deploy: building the $variant model-server image (first time can take long)" >&2
              if ! stream=$(nix-store --realise "$model_drv" | tail -n 1) || [ -z "$stream" ]; then
                echo "nanna-coder-deploy: could not build $model_drv; run 'nix build .#ollama-$variant-image' to see why" >&2
                exit 1
              fi
              "$stream" > "$tmp/model-server.tar"
              extra+=(--image-archive "$tmp/model-server.tar" --ollama-image ${imageMeta.modelServerName}:"$variant")
            fi

            nanna-deploy up "''${extra[@]}" "$@"
          '';
        };

      app = drv: description: {
        type = "app";
        program = lib.getExe drv;
        meta.description = description;
      };

      # Every example host, by name.
      hosts = {
        workstation-nvidia = ./hosts/workstation-nvidia;
        server-amd = ./hosts/server-amd;
        laptop-intel = ./hosts/laptop-intel;
        cpu-box = ./hosts/cpu-box;
        team-gpu-server = ./hosts/team-gpu-server;
        team-client = ./hosts/team-client;
      };

      # services.nanna-coder with this flake's packages as the defaults of its package and
      # image options, for the host's system. The host's `pkgs` is left as it is (no
      # overlay), so the module also works where pkgs is read-only (readOnlyPkgs,
      # testers.runNixOSTest).
      nixosModule = { lib, pkgs, ... }:
        let
          inherit (pkgs.stdenv.hostPlatform) system;
          packages = self.packages.${system} or { };
        in
        {
          _file = "${toString ./.}/flake.nix#nixosModules.nanna-coder";
          imports = [ ./modules/nanna-coder.nix ];
          services.nanna-coder = {
            package = lib.mkIf (packages ? nanna) (lib.mkDefault packages.nanna);
            containers.images = lib.mkIf (builtins.elem system linuxSystems)
              (lib.mkDefault pkgsBySystem.${system}.nanna-coder-images);
          };
        };
    in
    {
      overlays.default = overlay;

      nixosModules = {
        nanna-coder = nixosModule;
        default = self.nixosModules.nanna-coder;
      };

      nixosConfigurations = lib.mapAttrs
        (_: path: lib.nixosSystem {
          modules = [ self.nixosModules.default path ];
        })
        hosts;

      packages = lib.recursiveUpdate
        (forSystems allSystems (pkgs: {
          inherit (pkgs) nanna nanna-deploy nanna-scripted-llm nanna-coder;
          default = pkgs.nanna-coder;
        }))
        (forSystems linuxSystems (pkgs:
          {
            assistant-image = pkgs.nanna-coder-images.assistant;
            deploy = deployApp pkgs;
          }
          // lib.mapAttrs' (name: image: lib.nameValuePair "${name}-image" image)
            (lib.filterAttrs (name: value: lib.isDerivation value && lib.hasPrefix "ollama-" name)
              pkgs.nanna-coder-images)));

      apps = lib.recursiveUpdate
        (forSystems allSystems (pkgs: rec {
          nanna = app pkgs.nanna "Nanna Coder agent CLI";
          harness = nanna;
          default = nanna;
          deploy = app pkgs.nanna-deploy "nanna-deploy (images from a registry)";
          detect-gpu = app
            (pkgs.writeShellApplication {
              name = "nanna-detect-gpu";
              runtimeInputs = [ pkgs.nanna-deploy ];
              text = ''exec nanna-deploy detect "$@"'';
            }) "Detect the GPU nanna-deploy would use";
        }))
        (forSystems linuxSystems (pkgs: {
          deploy = app self.packages.${pkgs.stdenv.hostPlatform.system}.deploy
            "nanna-deploy with this flake's Nix-built images";
        }));

      devShells = forSystems allSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            cmake
            perl
            jq
            podman
            deadnix
            statix
            nixpkgs-fmt
          ];
          RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
        };
      });

      formatter = forSystems allSystems (pkgs: pkgs.nixpkgs-fmt);

      checks = lib.recursiveUpdate
        (forSystems allSystems (pkgs: import ./checks { inherit pkgs; }))
        (forSystems linuxSystems (pkgs: import ./checks/linux.nix {
          inherit pkgs self lib;
          nixosSystem = lib.nixosSystem;
        }));
    };
}
