# A team's GPU server: one NVIDIA machine runs the model server (Ollama with CUDA) for
# everybody on the LAN. The developers' machines (see ../team-client) run only the CLI,
# pointed at this host.
{ ... }:
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "gpu-server";
  services.openssh.enable = true;

  # The proprietary driver; CUDA is unfree too.
  nixpkgs.config.allowUnfree = true;
  services.xserver.videoDrivers = [ "nvidia" ];
  hardware.graphics.enable = true;
  hardware.nvidia.open = true;

  services.nanna-coder = {
    enable = true;
    gpu = "nvidia";
    mode = "native";
    # Listen on the LAN and let it in. Ollama has no authentication: keep this port on a
    # trusted network (or behind a VPN / reverse proxy with auth).
    host = "0.0.0.0";
    openFirewall = true;
    defaultModel = "qwen2.5-coder:32b";
    loadModels = [ "qwen2.5-coder:32b" "qwen2.5-coder:7b" ];
    contextLength = 32768;
    environmentVariables = {
      # Several developers at once: parallel requests per model, models kept loaded.
      OLLAMA_NUM_PARALLEL = "4";
      OLLAMA_KEEP_ALIVE = "30m";
    };
  };

  users.users.admin = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
  };

  system.stateVersion = "25.11";
}
