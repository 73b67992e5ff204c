# services.nanna-coder in native mode: the model server unit (the scripted server in place
# of Ollama) comes up, `nanna health` passes, and `nanna chat --prompt` carries out the
# scripted write_file call in a workspace.
{ pkgs, module }:
let
  scripted = import ./scripted-ollama.nix { inherit pkgs; };
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
  };

  testScript = ''
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
  '';
}
