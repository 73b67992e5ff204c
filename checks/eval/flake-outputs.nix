# Evaluates the flake's outputs against the stub nixpkgs (checks/eval/stub-nixpkgs, made
# by .ci/nix-checks.sh) and reports which outputs exist and evaluate. Nothing is built.
#   nix-instantiate --eval --strict --json checks/eval/flake-outputs.nix \
#     --arg stubNixpkgs /tmp/stub --arg flakeDir ./.
{ stubNixpkgs, flakeDir }:
let
  inherit (import ./flake.nix { inherit stubNixpkgs flakeDir; }) lib self;

  linux = [ "x86_64-linux" "aarch64-linux" ];
  # x86_64-darwin is gone: nixpkgs 26.11 throws when imported for it.
  darwin = [ "aarch64-darwin" ];
  all = linux ++ darwin;

  cliPackages = [ "default" "nanna" "nanna-coder" "nanna-deploy" "nanna-scripted-llm" ];
  # One model-server image per row of images/gpu-recipes.json that builds on the system.
  recipes = (builtins.fromJSON (builtins.readFile ../../images/gpu-recipes.json)).accelerators;
  modelImages = system: map (r: "ollama-${r.nix.variant}-image")
    (builtins.filter (r: r.nix.image_platforms == null || builtins.elem system r.nix.image_platforms) recipes);
  expectedPackages = {
    x86_64-linux = cliPackages ++ [ "assistant-image" "deploy" ] ++ modelImages "x86_64-linux";
    aarch64-linux = cliPackages ++ [ "assistant-image" "deploy" ] ++ modelImages "aarch64-linux";
    aarch64-darwin = cliPackages;
  };
  commonChecks = [ "cargo-test" "clippy" "nanna" "nanna-coder" "nanna-deploy" "nanna-scripted-llm" "nix-lint" "rustfmt" ];
  linuxChecks = commonChecks ++ [
    "assistant-image"
    "hosts-eval"
    "module-eval"
    "ollama-cpu-image"
    "vm-containers"
    "vm-containers-docker"
    "vm-native"
    "vm-team"
  ];
  apps = [ "default" "deploy" "detect-gpu" "harness" "nanna" ];

  # A check: evaluates `value` (errors become a failure) and compares it with `want`.
  check = what: value: want:
    let got = builtins.tryEval (builtins.deepSeq value value);
    in
    {
      inherit what;
      ok = got.success && got.value == want;
      detail =
        if !got.success then "evaluation failed"
        else if got.value == want then ""
        else "got ${builtins.toJSON got.value}, want ${builtins.toJSON want}";
    };
  sorted = builtins.sort builtins.lessThan;
  isDrv = v: (v.type or null) == "derivation" && builtins.isString v.name;

  perSystem = system:
    let
      packages = self.packages.${system};
      checks = self.checks.${system};
      isLinux = builtins.elem system linux;
    in
    [
      (check "${system}: packages" (sorted (builtins.attrNames packages)) (sorted expectedPackages.${system}))
      (check "${system}: every package is a derivation" (builtins.all isDrv (builtins.attrValues packages)) true)
      (check "${system}: apps" (sorted (builtins.attrNames self.apps.${system})) apps)
      (check "${system}: apps run store programs"
        (builtins.all (a: a.type == "app" && lib.hasPrefix "/nix/store/" a.program) (builtins.attrValues self.apps.${system}))
        true)
      (check "${system}: harness runs nanna" (lib.hasSuffix "/bin/nanna" self.apps.${system}.harness.program) true)
      (check "${system}: devShells.default" (isDrv self.devShells.${system}.default) true)
      (check "${system}: formatter is nixpkgs-fmt" self.formatter.${system}.name "nixpkgs-fmt")
      (check "${system}: checks" (sorted (builtins.attrNames checks)) (sorted (if isLinux then linuxChecks else commonChecks)))
    ]
    ++ map (name: check "${system}: check ${name} evaluates" (isDrv checks.${name}) true) (builtins.attrNames checks);

  hosts = [ "cpu-box" "laptop-intel" "server-amd" "team-client" "team-gpu-server" "workstation-nvidia" ];
  host = name: self.nixosConfigurations.${name}.config;
  vmTests = { inherit (self.checks.x86_64-linux) vm-native vm-containers vm-containers-docker vm-team; };
  hostChecks =
    [ (check "nixosConfigurations" (sorted (builtins.attrNames self.nixosConfigurations)) hosts) ]
    ++ map
      (name: check "host ${name} evaluates (assertions hold)"
        self.nixosConfigurations.${name}.config.system.build.toplevel.name "nixos-system-stub")
      hosts;

  results =
    builtins.concatMap perSystem all
    ++ hostChecks
    ++ [
      (check "overlays.default is an overlay" (builtins.isFunction self.overlays.default) true)
      (check "nixosModules" (sorted (builtins.attrNames self.nixosModules)) [ "default" "nanna-coder" ])
      (check "flake has no x86_64-darwin outputs"
        (builtins.any (o: o ? x86_64-darwin) [ self.packages self.apps self.checks self.devShells self.formatter ])
        false)
      (check "nixosModules.default leaves nixpkgs.overlays alone"
        (host "workstation-nvidia").nixpkgs.overlays [ ])
      (check "VM test nodes evaluate (assertions hold)"
        (lib.mapAttrs (_: t: t.toplevels) vmTests)
        {
          vm-containers.machine = "nixos-system-stub";
          vm-containers-docker.machine = "nixos-system-stub";
          vm-native.machine = "nixos-system-stub";
          vm-team = {
            client = "nixos-system-stub";
            server = "nixos-system-stub";
          };
        })
      (check "vm-containers(-docker) run the module's containers mode with the scripted image, confined"
        (map
          (test:
            let
              c = vmTests.${test}.machines.machine.config;
              assistant = c.virtualisation.oci-containers.containers.nanna-coder-assistant;
            in
            [
              c.services.nanna-coder.mode
              c.virtualisation.oci-containers.containers.nanna-coder-ollama.image
              (c.systemd.services ? "${c.virtualisation.oci-containers.backend}-nanna-coder-assistant")
              (builtins.elem "/srv/project:/workspace" assistant.volumes)
              (builtins.elem "d /srv/project - 1000 1000 -" c.systemd.tmpfiles.rules)
              assistant.user
              (builtins.elem "--read-only" assistant.extraOptions)
            ])
          [ "vm-containers" "vm-containers-docker" ])
        (map (_: [ "containers" "localhost/nanna-coder-scripted:test" true true true "1000:1000" true ]) [ 1 2 ]))
      (check "vm-containers-docker uses Docker"
        vmTests.vm-containers-docker.machines.machine.config.virtualisation.oci-containers.backend
        "docker")
      (check "vm-team: the server listens on the LAN, the client points at it"
        (
          let t = vmTests.vm-team.machines; in [
            t.server.config.services.ollama.host
            (builtins.elem 11434 t.server.config.networking.firewall.allowedTCPPorts)
            t.client.config.services.ollama.enable
            t.client.config.services.nanna-coder.settings.url
          ]
        )
        [ "0.0.0.0" true false "http://server:11434" ])
      (check "checks/eval/vm-scripts.nix covers every VM test"
        (builtins.attrNames (import ./vm-scripts.nix))
        (builtins.filter (lib.hasPrefix "vm-") (builtins.attrNames self.checks.x86_64-linux)))
      (check "team hosts: the client uses the GPU server"
        [ (host "team-client").services.nanna-coder.settings.url (host "team-gpu-server").services.ollama.host ]
        [ "http://gpu-server.lan:11434" "0.0.0.0" ])
    ];
in
{
  ok = builtins.all (r: r.ok) results;
  report = map (r: "${if r.ok then "ok  " else "FAIL"} ${r.what}${lib.optionalString (!r.ok) " -- ${r.detail}"}") results;
  # The generated `nix run .#deploy` wrapper, for `bash -n` / shellcheck.
  deployScripts = lib.genAttrs linux (system: self.packages.${system}.deploy.text);
}
