# An ARM (aarch64) box without a GPU: the model server and the assistant run as the
# flake's Nix-built containers under Docker, CPU only.
{ ... }:
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "cpu-box";
  services.openssh.enable = true;

  services.nanna-coder = {
    enable = true;
    gpu = "none";
    mode = "containers";
    containers.backend = "docker";
    # Small models are what a CPU can serve at a usable speed.
    defaultModel = "qwen2.5-coder:3b";
    loadModels = [ "qwen2.5-coder:3b" ];
    contextLength = 16384;
  };

  users.users.admin = {
    isNormalUser = true;
    extraGroups = [ "wheel" "docker" ];
  };

  system.stateVersion = "25.11";
}
