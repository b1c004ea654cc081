# OCI image `localhost/tgi-mock:latest`: a stand-in for ghcr.io/huggingface/text-generation-inference in
# the NixOS VM tests (no registry, no GPU). It keeps the parts of the real image that the module relies
# on: the `text-generation-launcher` entrypoint taking launcher flags, `PORT=80`, `HF_HOME=/data`,
# port 80, and `curl` for podman health checks. The server is python/src/tgi_nix/mock_server.py, which
# needs nothing but the Python standard library.
{
  lib,
  dockerTools,
  writeShellScriptBin,
  python3,
  curl,
  ...
}:
let
  mockServer = ../../python/src/tgi_nix/mock_server.py;

  # Same name and argument handling as the real entrypoint: `podman run IMAGE --model-id ... --port ...`.
  launcher = writeShellScriptBin "text-generation-launcher" ''
    exec ${lib.getExe python3} ${mockServer} "$@"
  '';
in
dockerTools.buildLayeredImage {
  name = "localhost/tgi-mock";
  tag = "latest";

  contents = [
    launcher
    python3
    curl
    dockerTools.binSh
  ];

  # /data is the Hugging Face cache (HF_HOME) that the module mounts a volume over; /tmp for Python.
  extraCommands = ''
    mkdir -p data tmp
    chmod 1777 tmp
  '';

  config = {
    Entrypoint = [ "${launcher}/bin/text-generation-launcher" ];
    Env = [
      "PORT=80"
      "HF_HOME=/data"
    ];
    ExposedPorts."80/tcp" = { };
    WorkingDir = "/";
  };
}
