# A headless server with an AMD GPU: Ollama (ROCm) serves the LAN, the assistant runs as
# a sandboxed service, and the firewall lets the LAN in.
{ ... }:
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "llm-server";
  services.openssh.enable = true;

  hardware.amdgpu.initrd.enable = true;
  hardware.graphics.enable = true;

  services.nanna-coder = {
    enable = true;
    gpu = "amd";
    mode = "native";
    host = "0.0.0.0";
    openFirewall = true;
    defaultModel = "qwen2.5-coder:32b";
    loadModels = [ "qwen2.5-coder:32b" "llama3.1:8b" ];
    contextLength = 65536;
    # RDNA2 cards ROCm does not list (e.g. RX 6700 XT) work as gfx1030.
    environmentVariables.HSA_OVERRIDE_GFX_VERSION = "10.3.0";
    assistant.serve = true;
  };

  users.users.admin = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
  };

  system.stateVersion = "25.11";
}
