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
  # Declared once, in python/pyproject.toml.
  pythonDeps = import ./python-deps.nix;
  fromPyproject = map (name: python3Packages.${name});

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

  # The parts of the checkout the tests read beside the package: the Nix core, the examples,
  # docs/options.md, nixos-tests/ (the scenarios' specs) and the dependency mapping.
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../python/pyproject.toml
      ../../python/src
      ../../python/tests
      ../../modules
      ../../examples
      ../../nixos-tests
      ../../docs/options.md
      ./python-deps.nix
    ];
  };
  sourceRoot = "source/python";

  build-system = [ python3Packages.setuptools ];

  dependencies = fromPyproject pythonDeps.dependencies;

  makeWrapperArgs = [
    "--set-default TGI_NIX_ROOT ${modules}"
    "--prefix PATH : ${lib.makeBinPath [ nix ]}"
  ];

  # The `dev` extra (pytest, hypothesis, pexpect, ...) plus the tools the tests run.
  nativeCheckInputs = fromPyproject pythonDeps.dev ++ [
    python3Packages.pytestCheckHook
    nix
    systemd
    podman
  ];

  # The tests evaluate the same core as the wrapper, from the unpacked checkout that also has nixos-tests/.
  preCheck = ''
    export TGI_NIX_ROOT=$(realpath ..)
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
