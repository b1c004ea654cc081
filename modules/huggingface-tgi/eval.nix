# Entry point for `tgi-nix`: evaluates the core on a JSON file.
#   nix-instantiate --eval --strict --json modules/huggingface-tgi/eval.nix --argstr input FILE.json
# FILE.json: { "instances": { NAME: { <every option> } }, "podman": "/usr/bin/podman",
#              "systemdVersion": 252 (or null: current),
#              "shell": "/bin/sh", "scriptsDir": "/usr/local/libexec/tgi-nix" }
# With "checkOnly": true only the validation findings (errors, warnings) are computed.
{ input }:
let
  core = import ./core;
  args = builtins.fromJSON (builtins.readFile input);
  result = core.evaluate (removeAttrs args [ "checkOnly" ]);
in
if args.checkOnly or false then { inherit (result) errors warnings; } else result
