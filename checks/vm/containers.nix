# services.nanna-coder in containers mode, through the module, on `backend` (Podman or
# Docker): the model server (the scripted server packed like the model-server images) and
# the flake's assistant image run as oci-containers units, loaded from the Nix store (no
# registry). Both units start and both containers answer their health probes. Then the
# confinement `nanna-deploy up` gives them (images/container-security.json) is shown from
# the host and attacked from inside: no capability and no-new-privileges in both, the
# assistant as the workspace's owner on a read-only root with an init as PID 1 and no mask
# under /proc; a scripted write_file call made by `nanna chat` lands in the workspace; and
# scripted `shell` calls run by `nanna exec` inside the container are confined by
# bubblewrap: a write in the workspace succeeds, writes elsewhere in the container fail,
# secrets stay out of the environment, the model server cannot be reached, no process
# outlives its command.
{ pkgs, module, backend ? "podman" }:
let
  scripted = import ./scripted-ollama.nix { inherit pkgs; };
  assistant = pkgs.nanna-coder-images.assistant;
  ref = image: "${image.imageName}:${image.imageTag}";

  # A second scripted server (on the host, port 11435) whose model runs commands: the one a
  # workspace-write session must allow and the attacks it must stop.
  shellPort = 11435;
  shellScript = pkgs.writeText "container-shell-script.json" (builtins.toJSON {
    turns = [
      {
        tool_calls = map (command: { name = "shell"; arguments = { inherit command; }; }) [
          "echo built > made.txt && cat made.txt"
          # The container's /tmp is writable to its user; the sandbox's /tmp is the
          # session's own directory, removed when the session ends.
          "echo pwned > /tmp/outside.txt && echo wrote"
          "echo pwned > /home/nanna/outside.txt"
          "env"
          "bash -c 'exec 3<>/dev/tcp/127.0.0.1/11434' && echo connected"
          "sleep 4243 >/dev/null 2>&1 & sleep 0.3; echo started"
        ];
      }
      { text = "done"; }
    ];
    on_exhausted.text = "done";
  });
in
pkgs.testers.runNixOSTest {
  name = "nanna-coder-containers" + (if backend == "podman" then "" else "-${backend}");

  nodes.machine = { pkgs, ... }: {
    imports = [ module ];
    services.nanna-coder = {
      enable = true;
      mode = "containers";
      gpu = "none";
      containers = {
        inherit backend;
        modelServerImage = scripted.image;
        # The project the assistant works on; the module makes it and gives it to the
        # image's user (containers.user = null: uid 1000).
        workspace = "/srv/project";
      };
      defaultModel = scripted.model;
      contextLength = 8192;
    };
    virtualisation.memorySize = 2048;
    virtualisation.diskSize = 4096;
    environment.systemPackages = [ pkgs.curl ];
  };

  testScript = ''
    import json

    engine = "${backend}"


    def in_assistant(command, options=""):
        return f"{engine} exec {options} nanna-coder-assistant {command}"


    def status_of(container):
        """The Cap*/NoNewPrivs/Uid lines of the container's first process, read on the host."""
        pid = machine.succeed(f"{engine} inspect -f '{{{{.State.Pid}}}}' {container}").strip()
        lines = machine.succeed(f"cat /proc/{pid}/status").splitlines()
        status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
        cmdline = machine.succeed(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
        return status, cmdline


    with subtest("the generated units start the Nix-built images"):
        machine.wait_for_unit(f"{engine}-nanna-coder-ollama.service")
        machine.wait_for_unit(f"{engine}-nanna-coder-assistant.service")
        machine.succeed(f"{engine} image inspect ${ref scripted.image}")
        machine.succeed(f"{engine} image inspect ${ref assistant}")
        running = machine.succeed(f"{engine} ps --format '{{{{.Names}}}}'")
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

    with subtest("both containers run without capabilities and with no-new-privileges"):
        for container in ["nanna-coder-ollama", "nanna-coder-assistant"]:
            status, _ = status_of(container)
            for cap in ["CapPrm", "CapEff", "CapBnd"]:
                assert status[cap].strip() == "0000000000000000", (container, cap, status[cap])
            assert status["NoNewPrivs"].strip() == "1", (container, status["NoNewPrivs"])

    with subtest("the assistant: the workspace owner's uid, the engine's init as PID 1"):
        status, cmdline = status_of("nanna-coder-assistant")
        assert status["Uid"].split()[:2] == ["1000", "1000"], status["Uid"]
        # Docker's init is docker-init (tini), Podman's catatonit as /run/podman-init.
        assert "-init -- /bin/nanna serve" in cmdline, cmdline
        machine.succeed("test \"$(stat -c %u:%g /srv/project)\" = 1000:1000")

    with subtest("the assistant's root is read-only; /tmp (its HOME) and the workspace are not"):
        machine.fail(in_assistant("touch /evil"))
        machine.fail(in_assistant("touch /home/nanna/evil"))
        machine.succeed(in_assistant("touch /tmp/ok"))
        machine.succeed(in_assistant("sh -c 'test \"$HOME\" = /tmp'"))
        machine.succeed(in_assistant("touch /workspace/probe"))
        machine.succeed("test \"$(stat -c %u /srv/project/probe)\" = 1000 && rm /srv/project/probe")

    with subtest("nothing under /proc is masked in the assistant, /sys/firmware still is"):
        mounts = machine.succeed(in_assistant("cut -d' ' -f5 /proc/self/mountinfo")).split()
        assert not [m for m in mounts if m.startswith("/proc/")], mounts
        assert "/sys/firmware" in mounts, mounts

    with subtest("a scripted tool call inside the assistant container edits a file"):
        machine.succeed(
            "echo draft > /srv/project/notes.txt",
            "chown 1000:1000 /srv/project/notes.txt",
        )
        out = machine.succeed(
            in_assistant("/bin/nanna chat --full-auto --prompt 'Put a greeting in notes.txt' 2>&1", "-w /workspace")
        )
        print(out)
        machine.succeed("test \"$(cat /srv/project/notes.txt)\" = '${scripted.content}'")
        assert "${scripted.finalText}" in out, "the final answer is missing from the output"

    with subtest("nanna health inside the assistant: its confined modes are enforced"):
        report = json.loads(machine.succeed(in_assistant("/bin/nanna health --json")))
        sandbox = {c["name"]: c for c in report["sandbox"]}
        for mode in ["sandbox read-only", "sandbox workspace-write"]:
            assert sandbox[mode]["ok"], sandbox
        machine.succeed(in_assistant("/bin/nanna sandbox --mode workspace-write -- true", "-w /workspace"))

    with subtest("shell calls inside the assistant run confined by bubblewrap"):
        machine.succeed(
            "systemd-run --unit=shell-model ${pkgs.nanna-scripted-llm}/bin/nanna-scripted-llm "
            + "--script ${shellScript} --model ${scripted.model} --listen 127.0.0.1:${toString shellPort}"
        )
        machine.wait_for_open_port(${toString shellPort})
        # The attack's target answers outside the sandbox (the containers use the host network).
        machine.succeed("curl -fsS http://127.0.0.1:11434/api/version")
        out = machine.succeed(
            in_assistant(
                "/bin/nanna --url http://127.0.0.1:${toString shellPort} exec --full-auto --json 'run the commands'",
                "-w /workspace -e SECRET_TOKEN=hunter2 -e NANNA_API_KEY=sk-test",
            )
        )
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results = [e for e in events if e.get("type") == "tool_result"]
        assert len(results) == 6, out
        # A command's exit code ends its output ("[exit code N]").
        write, tmp, home, env, tcp, orphan = [r["output"] for r in results]
        assert "built" in write and "[exit code 0]" in write, write
        machine.succeed("test \"$(cat /srv/project/made.txt)\" = built")
        machine.succeed("test \"$(stat -c %u /srv/project/made.txt)\" = 1000")
        # Written in the session's own /tmp, which is gone with the session.
        assert "wrote" in tmp, tmp
        machine.fail(in_assistant("test -e /tmp/outside.txt"))
        machine.fail(in_assistant("sh -c 'ls -d /tmp/nanna-tmp-*'"))
        assert "Read-only file system" in home and "[exit code 0]" not in home, home
        assert "PATH=" in env and "hunter2" not in env and "sk-test" not in env, env
        assert "[exit code 0]" not in tcp and "connected" not in tcp, tcp
        assert "started" in orphan, orphan
        machine.fail("pgrep -f 'sleep 4243'")
  '';
}
