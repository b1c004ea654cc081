# Entry point for `tgi-nix`: evaluates the core on a JSON file of instances.
#   nix-instantiate --eval --strict --json modules/huggingface-tgi/eval.nix --argstr input FILE.json
# FILE.json: { "instances": { NAME: { <every option> } }, "podman": "/usr/bin/podman", "shell": "/bin/sh" }
{ input }:
let
  core = import ./core.nix;
  args = builtins.fromJSON (builtins.readFile input);
in
core.evaluate args
