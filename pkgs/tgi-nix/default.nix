# The `tgi-nix` CLI. Its test suite (all but the QEMU VM tests, which need a VM image built from
# Debian packages) runs in checkPhase against real nix-instantiate and systemd-analyze.
{
  lib,
  python3Packages,
  nix,
  systemd,
  podman,
}:
let
  # core.nix and friends: the CLI evaluates the same files as the NixOS module.
  modules = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../modules
      ../../docs/options.md
      ../../examples
    ];
  };
in
python3Packages.buildPythonApplication {
  pname = "tgi-nix";
  version = "0.1.0";
  pyproject = true;

  src = lib.fileset.toSource {
    root = ../../python;
    fileset = lib.fileset.unions [
      ../../python/pyproject.toml
      ../../python/src
      ../../python/tests
    ];
  };

  build-system = [ python3Packages.setuptools ];

  dependencies = with python3Packages; [
    pydantic
    jinja2
    click
    httpx
    httpx-sse
    prometheus-client
    rich
    pexpect
    pyyaml
  ];

  makeWrapperArgs = [
    "--set-default TGI_NIX_ROOT ${modules}"
    "--prefix PATH : ${lib.makeBinPath [ nix ]}"
  ];

  nativeCheckInputs = [
    python3Packages.pytestCheckHook
    python3Packages.hypothesis
    python3Packages.tomli-w
    python3Packages.kubernetes-validate
    nix
    systemd
    podman
  ];

  preCheck = ''
    export TGI_NIX_ROOT=${modules}
    export NIX_STATE_DIR=$TMPDIR/nix-state
    export HOME=$TMPDIR
  '';

  pytestFlags = [
    "-m"
    "not vm"
  ];

  meta = {
    description = "Generator, validator, client and test harness for Hugging Face TGI on NixOS";
    license = lib.licenses.mit;
    mainProgram = "tgi-nix";
    platforms = lib.platforms.linux;
  };
}
