# The `tgi-nix` CLI. Its test suite (all but the QEMU VM tests, which need a VM image built from
# Debian packages) runs in checkPhase against real nix-instantiate and systemd-analyze.
{
  lib,
  python3Packages,
  nix,
  systemd,
  podman,
  git,
}:
let
  # Declared once, in python/pyproject.toml.
  pythonDeps = import ./python-deps.nix;
  fromPyproject = map (name: python3Packages.${name});

  # The files the package is built and tested from, listed once: scripts/check-package-fileset.sh
  # runs the checkPhase's test selection from a copy of exactly these.
  fileset = map (p: ../.. + "/${p}") (builtins.fromJSON (builtins.readFile ./fileset.json));
in
python3Packages.buildPythonApplication {
  pname = "tgi-nix";
  version = "0.1.0";
  pyproject = true;

  # The package (its Nix core is python/src/tgi_nix/nix/module, a link to modules/huggingface-tgi
  # that the wheel turns into a copy) and what its tests read beside it.
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions fileset;
  };
  sourceRoot = "source/python";

  build-system = [ python3Packages.setuptools ];

  dependencies = fromPyproject pythonDeps.dependencies;

  # The installed package carries its own copy of the Nix core; nix-instantiate evaluates it.
  makeWrapperArgs = [ "--prefix PATH : ${lib.makeBinPath [ nix ]}" ];

  # The `dev` extra (pytest, hypothesis, pexpect, ...) plus the tools the tests run.
  nativeCheckInputs = fromPyproject pythonDeps.dev ++ [
    python3Packages.pytestCheckHook
    nix
    systemd
    podman
    # tests/test_tgi_releases.py builds a fake TGI checkout for scripts/refresh-tgi-releases.py
    git
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
