# services.nanna-coder in native mode: the model server unit (the scripted server in place
# of Ollama) comes up, `nanna health` passes, and `nanna chat --prompt` carries out the
# scripted write_file call in a workspace. Then, as an unprivileged user, `shell` calls
# under workspace-write run confined: the package's own bubblewrap and NixOS' default user
# namespaces are enough (nothing is configured for it here).
{ pkgs, module }:
let
  scripted = import ./scripted-ollama.nix { inherit pkgs; };

  # A second scripted server (port 11435) whose model runs commands: one a workspace-write
  # session must allow (a write in the workspace) and the attacks it must stop (a write
  # outside it, reading a secret variable, a TCP connection to the model server, a process
  # left running).
  shellPort = 11435;
  shellScript = pkgs.writeText "shell-script.json" (builtins.toJSON {
    turns = [
      {
        tool_calls = map (command: { name = "shell"; arguments = { inherit command; }; }) [
          "echo built > made.txt && cat made.txt"
          "echo pwned > /home/alice/outside.txt"
          "env"
          "curl -sS -m 5 http://127.0.0.1:11434/api/version"
          "setsid sleep 4243 >/dev/null 2>&1 & sleep 0.3; echo started"
        ];
      }
      { text = "done"; }
    ];
    on_exhausted.text = "done";
  });
  shellSession = pkgs.writeShellApplication {
    name = "shell-session";
    text = ''
      mkdir -p ~/project
      cd ~/project
      SECRET_TOKEN=hunter2 NANNA_API_KEY=sk-test \
        nanna --url http://127.0.0.1:${toString shellPort} exec --full-auto --json "run the commands"
    '';
  };
in
pkgs.testers.runNixOSTest {
  name = "nanna-coder-native";

  nodes.machine = { pkgs, ... }: {
    imports = [ module ];
    services.nanna-coder = {
      enable = true;
      mode = "native";
      gpu = "none";
      modelServerPackage = scripted.ollama;
      defaultModel = scripted.model;
      contextLength = 8192;
      assistant.serve = true;
    };
    environment.systemPackages = [ pkgs.curl ];
    users.users.alice.isNormalUser = true;
  };

  testScript = ''
    import json

    machine.wait_for_unit("ollama.service")
    machine.wait_for_open_port(11434)

    with subtest("the CLI finds the server through /etc/nanna/config.toml"):
        machine.succeed("grep -q 'http://127.0.0.1:11434' /etc/nanna/config.toml")
        machine.succeed("nanna health")

    with subtest("the assistant service answers on its health endpoint"):
        machine.wait_for_unit("nanna-coder-assistant.service")
        machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/health")

    with subtest("a scripted tool call edits a file in the workspace"):
        machine.succeed("mkdir -p /root/project && echo draft > /root/project/notes.txt")
        out = machine.succeed(
            "cd /root/project && nanna chat --full-auto --prompt 'Put a greeting in notes.txt' 2>&1"
        )
        print(out)
        machine.succeed("test \"$(cat /root/project/notes.txt)\" = '${scripted.content}'")
        assert "${scripted.finalText}" in out, "the final answer is missing from the output"

    with subtest("an unprivileged user's shell calls run confined under workspace-write"):
        machine.succeed("su -l alice -c 'nanna health'")
        machine.succeed(
            "systemd-run --unit=shell-model ${pkgs.nanna-scripted-llm}/bin/nanna-scripted-llm "
            + "--script ${shellScript} --model ${scripted.model} --listen 127.0.0.1:${toString shellPort}"
        )
        machine.wait_for_open_port(${toString shellPort})
        # The attack's target answers outside the sandbox.
        machine.succeed("curl -fsS http://127.0.0.1:11434/api/version")
        out = machine.succeed("su -l alice -c ${shellSession}/bin/shell-session")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results = [e for e in events if e.get("type") == "tool_result"]
        assert len(results) == 5, out
        # A command's exit code ends its output ("[exit code N]").
        write, outside, env, tcp, orphan = [r["output"] for r in results]
        assert "built" in write and "[exit code 0]" in write, write
        machine.succeed("test \"$(cat /home/alice/project/made.txt)\" = built")
        assert "Read-only file system" in outside and "[exit code 0]" not in outside, outside
        machine.fail("test -e /home/alice/outside.txt")
        assert "PATH=" in env and "hunter2" not in env and "sk-test" not in env, env
        assert "[exit code 0]" not in tcp, tcp
        assert "started" in orphan, orphan
        machine.fail("pgrep -f 'sleep 4243'")
  '';
}
