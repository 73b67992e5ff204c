# A laptop with Intel graphics (Arc / Iris Xe): Ollama on Vulkan through Mesa, loopback only.
{ ... }:
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "laptop";
  networking.networkmanager.enable = true;

  hardware.graphics.enable = true;

  services.nanna-coder = {
    enable = true;
    gpu = "intel";
    mode = "native";
    # Small enough for shared graphics memory.
    defaultModel = "qwen2.5-coder:7b";
    loadModels = [ "qwen2.5-coder:7b" ];
    contextLength = 16384;
  };

  users.users.dev = {
    isNormalUser = true;
    extraGroups = [ "wheel" "networkmanager" ];
  };

  system.stateVersion = "25.11";
}
