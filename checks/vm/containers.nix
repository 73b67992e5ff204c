# services.nanna-coder in containers mode, through the module: the model server (the
# scripted server packed like the model-server images) and the flake's assistant image run
# as oci-containers units under Podman, loaded from the Nix store (no registry). Both units
# start, both containers answer their health probes, and a scripted write_file call made by
# `nanna chat` inside the assistant container lands in the host directory mounted as its
# workspace.
{ pkgs, module }:
let
  scripted = import ./scripted-ollama.nix { inherit pkgs; };
  assistant = pkgs.nanna-coder-images.assistant;
  ref = image: "${image.imageName}:${image.imageTag}";
in
pkgs.testers.runNixOSTest {
  name = "nanna-coder-containers";

  nodes.machine = { pkgs, ... }: {
    imports = [ module ];
    services.nanna-coder = {
      enable = true;
      mode = "containers";
      gpu = "none";
      containers.backend = "podman";
      containers.modelServerImage = scripted.image;
      defaultModel = scripted.model;
      contextLength = 8192;
    };
    # The project the assistant works on: a host directory owned by the image's user (1000),
    # added to the container the module defines.
    systemd.tmpfiles.rules = [ "d /srv/project 0755 1000 1000 -" ];
    virtualisation.oci-containers.containers.nanna-coder-assistant.volumes = [ "/srv/project:/workspace" ];
    virtualisation.memorySize = 2048;
    virtualisation.diskSize = 4096;
    environment.systemPackages = [ pkgs.curl ];
  };

  testScript = ''
    import json

    with subtest("the generated units start the Nix-built images"):
        machine.wait_for_unit("podman-nanna-coder-ollama.service")
        machine.wait_for_unit("podman-nanna-coder-assistant.service")
        machine.succeed("podman image exists ${ref scripted.image}")
        machine.succeed("podman image exists ${ref assistant}")
        running = machine.succeed("podman ps --format '{{.Names}}'")
        assert "nanna-coder-ollama" in running, running
        assert "nanna-coder-assistant" in running, running

    with subtest("both containers are healthy (nanna-deploy's probes: GET / and GET /health)"):
        machine.wait_for_open_port(11434)
        machine.wait_until_succeeds("curl -fsS http://127.0.0.1:11434/", timeout=120)
        health = json.loads(
            machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/health", timeout=120)
        )
        assert health["model_server"] == "reachable", health
        assert health["model"] == "${scripted.model}", health

    with subtest("the host's CLI finds the containerized server through /etc/nanna/config.toml"):
        machine.succeed("nanna health")

    with subtest("a scripted tool call inside the assistant container edits a file"):
        machine.succeed(
            "echo draft > /srv/project/notes.txt",
            "chown 1000:1000 /srv/project/notes.txt",
        )
        out = machine.succeed(
            "podman exec -w /workspace nanna-coder-assistant"
            " /bin/nanna chat --full-auto --prompt 'Put a greeting in notes.txt' 2>&1"
        )
        print(out)
        machine.succeed("test \"$(cat /srv/project/notes.txt)\" = '${scripted.content}'")
        assert "${scripted.finalText}" in out, "the final answer is missing from the output"
  '';
}
