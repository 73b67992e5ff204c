# A fake `pkgs` with just what modules/nanna-coder.nix reads: fake derivations whose names
# tell which attribute they stand for, so the evaluation checks can see which one was chosen.
{ lib, system ? "x86_64-linux" }:
let
  fake = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    meta.mainProgram = extra.mainProgram or name;
  } // builtins.removeAttrs extra [ "mainProgram" ];

  isx86_64 = lib.hasPrefix "x86_64-" system;
  image = tag: fake "nanna-coder-image-${tag}" { imageName = "localhost/nanna-coder-ollama"; imageTag = tag; };
in
{
  stdenv.hostPlatform = { inherit system isx86_64; };

  nanna = fake "nanna" { };
  ollama = fake "ollama" { mainProgram = "ollama"; };
  ollama-cpu = fake "ollama-cpu" { mainProgram = "ollama"; };
  ollama-cuda = fake "ollama-cuda" { mainProgram = "ollama"; };
  ollama-rocm = fake "ollama-rocm" { mainProgram = "ollama"; };
  ollama-vulkan = fake "ollama-vulkan" { mainProgram = "ollama"; };

  nanna-coder-images = {
    assistant = fake "nanna-coder-image-assistant" {
      imageName = "localhost/nanna-coder-assistant";
      imageTag = "latest";
    };
    ollama-cpu = image "cpu";
    ollama-vulkan = image "vulkan";
  } // lib.optionalAttrs isx86_64 {
    ollama-cuda = image "cuda";
    ollama-rocm = image "rocm";
  };

  formats.toml = _: {
    type = lib.types.attrsOf lib.types.anything;
    generate = name: value: fake name { inherit value; };
  };
}
