# A desktop workstation with an NVIDIA card: Ollama (CUDA) runs natively, the CLI talks to
# it on loopback.
{ ... }:
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "workstation";

  # The proprietary driver; CUDA is unfree too.
  nixpkgs.config.allowUnfree = true;
  services.xserver.videoDrivers = [ "nvidia" ];
  hardware.graphics.enable = true;
  hardware.nvidia = {
    open = true;
    modesetting.enable = true;
  };

  services.nanna-coder = {
    enable = true;
    gpu = "nvidia";
    mode = "native";
    defaultModel = "qwen2.5-coder:14b";
    loadModels = [ "qwen2.5-coder:14b" ];
    contextLength = 32768;
    settings.temperature = 0.2;
  };

  users.users.dev = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
  };

  system.stateVersion = "25.11";
}
