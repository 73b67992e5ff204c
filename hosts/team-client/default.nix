# A developer's machine in the team of ../team-gpu-server: no model server here. `nanna`
# (installed system-wide, configured in /etc/nanna/config.toml) talks to the GPU server.
{ ... }:
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "dev-laptop";
  networking.networkmanager.enable = true;

  services.nanna-coder = {
    enable = true;
    mode = "client";
    serverUrl = "http://gpu-server.lan:11434";
    # One of the models the server loads, and the context window it serves.
    defaultModel = "qwen2.5-coder:32b";
    contextLength = 32768;
  };

  users.users.dev = {
    isNormalUser = true;
    extraGroups = [ "wheel" "networkmanager" ];
  };

  system.stateVersion = "25.11";
}
