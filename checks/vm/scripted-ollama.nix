# A stand-in for `ollama serve` built on nanna-scripted-llm: VMs cannot download models, so
# the tests run the agent against a server that plays back a script.
#
# The script: turn 1 asks for a write_file tool call on notes.txt, turn 2 answers with text.
{ pkgs }:
rec {
  model = "scripted-coder:latest";
  content = "Hello from the scripted model";
  finalText = "notes.txt now holds the greeting.";

  script = pkgs.writeText "edit-file-script.json" (builtins.toJSON {
    turns = [
      {
        tool_calls = [{
          name = "write_file";
          arguments = {
            path = "notes.txt";
            inherit content;
          };
        }];
      }
      { text = finalText; }
    ];
    on_exhausted.text = finalText;
  });

  # Main program `ollama`; its arguments (`serve`) are ignored and OLLAMA_HOST tells
  # where to listen, as with the real server.
  ollama = pkgs.writeShellApplication {
    name = "ollama";
    runtimeInputs = [ pkgs.nanna-scripted-llm ];
    text = ''
      exec nanna-scripted-llm --script ${script} --model ${model}
    '';
  };

  # The scripted server packed like the model-server images.
  image = pkgs.nanna-coder-images.mkModelServerImage {
    variant = "cpu";
    package = ollama;
    name = "localhost/nanna-coder-scripted";
    tag = "test";
  };
}
