# nanna-deploy with Podman and Nix-built images only: the assistant image and the scripted
# server packed as a model-server image are loaded from docker-archive tarballs, the stack
# comes up healthy and goes down again.
{ pkgs, module }:
let
  scripted = import ./scripted-ollama.nix { inherit pkgs; };
  assistant = pkgs.nanna-coder-images.assistant;
  ref = image: "${image.imageName}:${image.imageTag}";
in
pkgs.testers.runNixOSTest {
  name = "nanna-coder-containers";

  nodes.machine = { pkgs, ... }: {
    # The module is imported (disabled) so its options exist as on a user's machine.
    imports = [ module ];
    virtualisation.podman.enable = true;
    virtualisation.memorySize = 2048;
    virtualisation.diskSize = 4096;
    environment.systemPackages = [ pkgs.nanna-deploy pkgs.curl ];
  };

  testScript = ''
    machine.wait_for_unit("podman.socket")
    machine.succeed("${assistant} > /tmp/assistant.tar")
    machine.succeed("${scripted.image} > /tmp/model-server.tar")

    with subtest("up loads the archives and starts the stack"):
        machine.succeed(
            "nanna-deploy up --engine podman --type network --gpu none"
            " --image-archive /tmp/assistant.tar --image-archive /tmp/model-server.tar"
            " --ollama-image ${ref scripted.image} --harness-image ${ref assistant}"
        )
        machine.succeed("podman image exists ${ref assistant}")
        machine.succeed("podman image exists ${ref scripted.image}")

    with subtest("status reports a healthy stack"):
        machine.wait_until_succeeds("nanna-deploy status | grep -qi healthy", timeout=180)

    with subtest("down removes the containers"):
        machine.succeed("nanna-deploy down")
        machine.wait_until_succeeds("test -z \"$(podman ps -q)\"", timeout=60)
  '';
}
