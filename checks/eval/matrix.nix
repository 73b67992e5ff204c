# The module matrix: services.nanna-coder for every gpu × mode × way of importing it,
# evaluated as a whole NixOS system on the NixOS stand-in (checks/eval/stub-nixpkgs/nixos)
# with nixpkgs' real lib.evalModules. Each cell is one of
#   "ok"               the system evaluates (assertions hold, units and images force);
#   "assert: <msg>"    a failed assertion of ours, which says what to do (the wanted result
#                      where the configuration cannot work, e.g. no packages at all);
#   "assert(other)"    an assertion of another module failed;
#   an evaluation error (never acceptable: the user gets a stack trace). tryEval cannot
#                      catch every error (a missing attribute aborts), so
#                      checks/eval/run-matrix.py evaluates each cell in its own process.
# `cells.<style>.<mode>.<gpu>` is one cell; `styles`, `modes` and `gpus` list them.
{ stubNixpkgs, flakeDir, modes ? [ "native" "containers" "client" ] }:
let
  inherit (import ./flake.nix { inherit stubNixpkgs flakeDir; }) nixpkgs lib self;
  moduleFile = flakeDir + "/modules/nanna-coder.nix";
  system = "x86_64-linux";

  hostPkgs = overlays: import stubNixpkgs {
    inherit system overlays;
    config.allowUnfree = true;
  };

  # How the host brings in the module and its packages.
  styles = {
    "flake module" = [ self.nixosModules.default { nixpkgs.hostPlatform = system; } ];
    # lib.nixosSystem { pkgs = ...; } defines nixpkgs.pkgs at normal priority.
    "flake module; nixpkgs.pkgs = host's pkgs" = [
      { nixpkgs.pkgs = hostPkgs [ ]; }
      self.nixosModules.default
    ];
    # What nixpkgs recommends for a host that brings its own pkgs.
    "flake module; readOnlyPkgs + nixpkgs.pkgs" = [
      nixpkgs.nixosModules.readOnlyPkgs
      { nixpkgs.pkgs = hostPkgs [ ]; }
      self.nixosModules.default
    ];
    "file; nixpkgs.overlays = [ overlays.default ]" = [
      moduleFile
      {
        nixpkgs.hostPlatform = system;
        nixpkgs.overlays = [ self.overlays.default ];
      }
    ];
    "file; readOnlyPkgs + nixpkgs.pkgs with the overlay" = [
      nixpkgs.nixosModules.readOnlyPkgs
      { nixpkgs.pkgs = hostPkgs [ self.overlays.default ]; }
      moduleFile
    ];
    "file; no flake packages" = [ moduleFile { nixpkgs.hostPlatform = system; } ];
  };

  host = ownPkgs: gpu: mode: {
    boot.loader.grub.enable = false;
    fileSystems."/" = {
      device = "none";
      fsType = "tmpfs";
    };
    system.stateVersion = "26.11";
    # CUDA is unfree: a host with its own pkgs made it with allowUnfree (hostPkgs above).
    nixpkgs.config = lib.mkIf (!ownPkgs) { allowUnfree = true; };
    # What the GPU needs from the host (the NVIDIA driver) and, in containers mode, the
    # option writing its CDI spec (images/gpu-recipes.json).
    imports = [ recipes.${gpu}.nix.host ]
      ++ lib.optional (mode == "containers" && recipes.${gpu}.nix.cdi_option != null)
      (lib.setAttrByPath (lib.splitString "." recipes.${gpu}.nix.cdi_option) true);
    services.nanna-coder = {
      enable = true;
      inherit gpu mode;
    } // lib.optionalAttrs (mode == "client") { serverUrl = "http://gpu-server.lan:11434"; };
  };

  cell = style: gpu: mode:
    let
      ownPkgs = lib.hasInfix "nixpkgs.pkgs" style;
      sys = lib.nixosSystem { modules = styles.${style} ++ [ (host ownPkgs gpu mode) ]; };
      inherit (sys) config;
      failed = builtins.tryEval (builtins.deepSeq
        (map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions))
        (map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions)));
      ours = builtins.filter (lib.hasPrefix "services.nanna-coder") failed.value;
      units = config.systemd.services;
      forced = {
        toplevel = config.system.build.toplevel.drvPath;
        etc = config.environment.etc."nanna/config.toml".source.name;
        packages = map (p: p.name) config.environment.systemPackages;
        units =
          if mode == "containers" then
            map (c: [ units.${c.serviceName}.script units.${c.serviceName}.serviceConfig.ExecStartPre ])
              (builtins.attrValues config.virtualisation.oci-containers.containers)
          else if mode == "native" then [ units.ollama.serviceConfig.ExecStart units.ollama.serviceConfig.DeviceAllow ]
          else [ config.services.nanna-coder.settings.url ];
      };
      whole = builtins.tryEval (builtins.deepSeq forced true);
      firstLine = m: builtins.head (lib.splitString "\n" m);
    in
    if !failed.success then "ERROR (while evaluating the assertions)"
    else if ours != [ ] then "assert: ${firstLine (builtins.head ours)}"
    else if failed.value != [ ] then "assert(other): ${firstLine (builtins.head failed.value)}"
    else if whole.success then "ok"
    else "ERROR (while forcing the units, images or system)";

  recipeList = (builtins.fromJSON (builtins.readFile ../../images/gpu-recipes.json)).accelerators;
  recipes = builtins.listToAttrs (map (r: { inherit (r) name; value = r; }) recipeList);
  gpus = map (r: r.name) recipeList;
in
{
  inherit gpus modes;
  # What each cell must give: everything works, except that without the flake's packages
  # the module asks for them by assertion.
  expected = lib.mapAttrs
    (style: _: lib.genAttrs modes (_: lib.genAttrs gpus (_:
      if style == "file; no flake packages" then "assert: services.nanna-coder: package is not set"
      else "ok")))
    styles;
  styles = builtins.attrNames styles;
  cells = lib.mapAttrs
    (style: _: lib.genAttrs modes (mode: lib.genAttrs gpus (gpu: cell style gpu mode)))
    styles;
}
