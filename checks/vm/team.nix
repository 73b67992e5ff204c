# The team setup of hosts/team-gpu-server and hosts/team-client on two VMs: the server runs
# the model server (the scripted server in place of Ollama) on the LAN with its port open;
# the client runs none and its `nanna` talks to the server: `nanna health` passes and a
# scripted write_file call edits a file on the client.
{ pkgs, module }:
let
  scripted = import ./scripted-ollama.nix { inherit pkgs; };
in
pkgs.testers.runNixOSTest {
  name = "nanna-coder-team";

  nodes.server = {
    imports = [ module ];
    services.nanna-coder = {
      enable = true;
      mode = "native";
      gpu = "none";
      host = "0.0.0.0";
      openFirewall = true;
      modelServerPackage = scripted.ollama;
      defaultModel = scripted.model;
    };
  };

  nodes.client = {
    imports = [ module ];
    services.nanna-coder = {
      enable = true;
      mode = "client";
      serverUrl = "http://server:11434";
      defaultModel = scripted.model;
    };
  };

  testScript = ''
    start_all()
    server.wait_for_unit("ollama.service")
    server.wait_for_open_port(11434)
    client.wait_for_unit("multi-user.target")

    with subtest("the client runs no model server"):
        client.fail("systemctl cat ollama.service")

    with subtest("the client's CLI reaches the server over the network"):
        client.succeed("grep -q 'http://server:11434' /etc/nanna/config.toml")
        client.wait_until_succeeds("nanna health", timeout=120)

    with subtest("a scripted tool call on the client edits the client's file"):
        client.succeed("mkdir -p /root/project && echo draft > /root/project/notes.txt")
        out = client.succeed(
            "cd /root/project && nanna chat --full-auto --prompt 'Put a greeting in notes.txt' 2>&1"
        )
        print(out)
        client.succeed("test \"$(cat /root/project/notes.txt)\" = '${scripted.content}'")
        server.fail("test -e /root/project/notes.txt")
  '';
}
