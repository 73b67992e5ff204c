# virtualisation.oci-containers, after nixos/modules/virtualisation/oci-containers.nix
# (Swarsel/nixpkgs@4aa6836a, a fork of NixOS/nixpkgs).
#   Per-container options (lines 16-428): image (146-150), imageFile, imageStream (169-188,
#   a package that writes an image to stdout), capabilities (43-59: an attribute set of
#   capability name to true (add), false (drop) or null (the runtime's default)), cmd
#   (61-66), dependsOn (68-85), devices (87-99), environment (108-118), extraOptions
#   (132-137), networks, labels, ports, volumes (395-415), user, workdir, autoRemoveOnStop,
#   pull, serviceName defaulting to
#   "<backend>-<name>" (376-381), and `podman` (255-313), a submodule that is non-null only
#   with the podman backend (lines 425-427), with sdnotify "conmon" and user "root".
#   The unit of each container (mkService, lines 433-602):
#   - dependsOn becomes "<serviceName of that container>.service" in both `after` and
#     `requires` (436-438, 473-488, 515-519);
#   - `after` and `wants` get network-online.target only when neither imageFile nor
#     imageStream is set (478-481, 599-601), and docker.service/docker.socket with Docker;
#   - ExecStartPre runs a script that removes a stale container and, with imageStream, pipes
#     the stream into `<backend> load` (440-465, 579);
#   - `script` runs `<backend> run --name=<name> ...` with, in this order, podman's
#     --cidfile/--sdnotify/-d/--replace, -e for each environment entry, -p, -u, -v for each
#     volume, -l, -w, --rm, --cap-add=<c> for each capability set to true and
#     --cap-drop=<c> for each set to false (549-554), --device=<d> for each device (555),
#     --network=<n> for each distinct network (556), --pull, the extraOptions, the image,
#     then cmd (521-561). Every value (environment names and values, user, volumes,
#     capabilities, devices, networks, extraOptions, cmd) passes through lib.escapeShellArg,
#     so a flag such as `--security-opt=unmask=/proc/*` reaches the engine as written,
#     never expanded by the shell;
#   - with podman: Type = notify, Delegate, NotifyAccess = all, User = the podman user
#     (563-591); wanted by multi-user.target when autoStart (597).
#   backend defaults to podman when system.stateVersion >= 22.05 (622-632).
#   Config (642-702), only when some container is defined: assertions (imageFile and
#   imageStream exclusive; no `podman` settings with Docker), one systemd service per
#   container under its serviceName (678), and virtualisation.podman.enable = true or
#   virtualisation.docker.enable = true for the chosen backend (695-700) at normal
#   priority -- a host that sets that engine's enable to false gets a conflicting
#   definitions error; only mkForce false gets past it.
#   Not modelled: login, labels' -l flags, --log-driver, entrypoint, hostname, privileged,
#   preRunExtraOptions, rootless users and lingering.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.virtualisation.oci-containers;
  list = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  nullStr = mkOption {
    type = types.nullOr types.str;
    default = null;
  };

  container = { name, ... }: {
    options = {
      image = mkOption { type = types.str; };
      imageFile = mkOption {
        type = types.nullOr types.package;
        default = null;
      };
      imageStream = mkOption {
        type = types.nullOr types.package;
        default = null;
      };
      capabilities = mkOption {
        type = types.lazyAttrsOf (types.nullOr types.bool);
        default = { };
      };
      cmd = list;
      dependsOn = list;
      devices = list;
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      environmentFiles = mkOption {
        type = types.listOf types.path;
        default = [ ];
      };
      extraOptions = list;
      networks = list;
      ports = list;
      volumes = list;
      user = nullStr;
      workdir = nullStr;
      entrypoint = nullStr;
      autoStart = mkOption {
        type = types.bool;
        default = true;
      };
      autoRemoveOnStop = mkOption {
        type = types.bool;
        default = true;
      };
      pull = mkOption {
        type = types.enum [ "always" "missing" "never" "newer" ];
        default = "missing";
      };
      serviceName = mkOption {
        type = types.str;
        default = "${cfg.backend}-${name}";
      };
      podman = mkOption {
        default = null;
        type = types.nullOr (types.submodule {
          options.sdnotify = mkOption {
            type = types.enum [ "conmon" "healthy" "container" ];
            default = "conmon";
          };
          options.user = mkOption {
            type = types.str;
            default = "root";
          };
        });
      };
    };
    config.podman = lib.mkIf (cfg.backend == "podman") { };
  };

  unitFor = name: c:
    let
      deps = map (d: "${cfg.containers.${d}.serviceName}.service") c.dependsOn;
      fromRegistry = c.imageFile == null && c.imageStream == null;
      preStart = pkgs.writeShellApplication {
        name = "pre-start";
        text = lib.concatStringsSep "\n" ([ "${cfg.backend} rm -f ${name} || true" ]
          ++ lib.optional (c.imageFile != null) "${cfg.backend} load -i ${c.imageFile}"
          ++ lib.optional (c.imageStream != null) "${c.imageStream} | ${cfg.backend} load");
      };
      esc = lib.escapeShellArg;
      capsSetTo = value: builtins.attrNames (lib.filterAttrs (_: v: v == value) c.capabilities);
      runArgs =
        [ "exec ${cfg.backend}" "run" "--name=${esc name}" ]
        ++ lib.optionals (cfg.backend == "podman") [
          "--cidfile=/run/${esc name}/ctr-id"
          "--sdnotify=${c.podman.sdnotify}"
          "-d"
          "--replace"
        ]
        ++ lib.mapAttrsToList (k: v: "-e ${esc k}=${esc v}") c.environment
        ++ map (f: "--env-file ${esc f}") c.environmentFiles
        ++ map (p: "-p ${esc p}") c.ports
        ++ lib.optional (c.user != null) "-u ${esc c.user}"
        ++ map (v: "-v ${esc v}") c.volumes
        ++ lib.optional (c.workdir != null) "-w ${esc c.workdir}"
        ++ lib.optional c.autoRemoveOnStop "--rm"
        ++ map (k: "--cap-add=${esc k}") (capsSetTo true)
        ++ map (k: "--cap-drop=${esc k}") (capsSetTo false)
        ++ map (d: "--device=${esc d}") c.devices
        ++ map (n: "--network=${esc n}") (lib.unique c.networks)
        ++ [ "--pull ${esc c.pull}" ]
        ++ map esc c.extraOptions
        ++ [ c.image ]
        ++ map esc c.cmd;
    in
    {
      wantedBy = lib.optional c.autoStart "multi-user.target";
      wants = lib.optional fromRegistry "network-online.target";
      after = lib.optionals (cfg.backend == "docker") [ "docker.service" "docker.socket" ]
        ++ lib.optional fromRegistry "network-online.target"
        ++ deps;
      requires = deps;
      path = [ config.virtualisation.${cfg.backend}.package ];
      script = lib.concatStringsSep " \\\n  " runArgs;
      serviceConfig = {
        ExecStartPre = [ "${preStart}/bin/pre-start" ];
        Restart = "on-failure";
        TimeoutStartSec = 0;
        TimeoutStopSec = 120;
      } // lib.optionalAttrs (cfg.backend == "podman") {
        Delegate = true;
        NotifyAccess = "all";
        RuntimeDirectory = name;
        Type = "notify";
        User = c.podman.user;
      };
    };
in
{
  options.virtualisation.oci-containers = {
    backend = mkOption {
      type = types.enum [ "podman" "docker" ];
      default = if lib.versionAtLeast config.system.stateVersion "22.05" then "podman" else "docker";
    };
    containers = mkOption {
      type = types.attrsOf (types.submodule container);
      default = { };
    };
  };

  config = lib.mkIf (cfg.containers != { }) (lib.mkMerge [
    {
      assertions = lib.concatLists (lib.mapAttrsToList
        (name: c: [
          {
            assertion = c.imageFile == null || c.imageStream == null;
            message = "virtualisation.oci-containers.containers.${name}: You can only define one of imageFile and imageStream";
          }
          {
            assertion = cfg.backend == "docker" -> c.podman == null;
            message = "virtualisation.oci-containers.containers.${name}: Cannot set `podman` option if backend is `docker`.";
          }
        ])
        cfg.containers);
      systemd.services = lib.mapAttrs' (name: c: lib.nameValuePair c.serviceName (unitFor name c)) cfg.containers;
    }
    (lib.mkIf (cfg.backend == "podman") { virtualisation.podman.enable = true; })
    (lib.mkIf (cfg.backend == "docker") { virtualisation.docker.enable = true; })
  ]);
}
