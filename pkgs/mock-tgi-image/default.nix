# OCI image `localhost/tgi-mock:latest`: a stand-in for ghcr.io/huggingface/text-generation-inference in
# the NixOS VM tests (no registry, no GPU). It keeps the parts of the real image that the module relies
# on: the `text-generation-launcher` entrypoint taking launcher flags, `text-generation-server
# download-weights` on PATH, `PORT=80`, `HF_HOME=/data`, port 80, and `curl` for podman health checks.
# The server is the package python/src/tgi_nix/mock/, which needs nothing but the Python standard library.
{
  lib,
  dockerTools,
  runCommand,
  writeShellScriptBin,
  python3,
  curl,
  ...
}:
let
  mockDir = ../../python/src/tgi_nix/mock;
  mockSource = lib.fileset.toSource {
    root = mockDir;
    fileset = lib.fileset.fileFilter (file: file.hasExt "py") mockDir;
  };

  # The mock as a folder, run as a package: its imports are relative, so it works under any package
  # name (tgi_nix_mock, as in the Debian VM harness's image: python/src/tgi_nix/testing/vm/mockimage.py).
  mockPackage = runCommand "tgi-nix-mock" { } ''
    mkdir -p $out
    cp -r ${mockSource} $out/tgi_nix_mock
  '';

  # Same name and argument handling as the real entrypoint: `podman run IMAGE --model-id ... --port ...`.
  launcher = writeShellScriptBin "text-generation-launcher" ''
    export PYTHONPATH=${mockPackage}
    exec ${lib.getExe python3} -m tgi_nix_mock "$@"
  '';

  # TGI's launcher runs `text-generation-server download-weights ...` from the same image; so may a unit.
  server = writeShellScriptBin "text-generation-server" ''
    export PYTHONPATH=${mockPackage}
    exec ${lib.getExe python3} -m tgi_nix_mock.server "$@"
  '';
in
dockerTools.buildLayeredImage {
  name = "localhost/tgi-mock";
  tag = "latest";

  contents = [
    launcher
    server
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
