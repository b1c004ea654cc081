# The CLI's Python dependencies as python3Packages attribute names, read from python/pyproject.toml so
# they are declared once: a PyPI name is the nixpkgs attribute name once its version specifier is gone
# and it is lowercased (httpx-sse, prometheus-client, pyyaml, tomli-w, kubernetes-validate).
# Only builtins, so `nix-instantiate --eval --strict --json pkgs/tgi-nix/python-deps.nix` shows the
# mapping without nixpkgs.
let
  pyproject = builtins.fromTOML (builtins.readFile ../../python/pyproject.toml);

  letters = alphabet: builtins.genList (i: builtins.substring i 1 alphabet) 26;
  lowercase = builtins.replaceStrings (letters "ABCDEFGHIJKLMNOPQRSTUVWXYZ") (letters "abcdefghijklmnopqrstuvwxyz");

  # "pydantic>=2.7,<3" -> "pydantic"; "httpx-sse>=0.4" -> "httpx-sse"; "types-PyYAML" -> "types-pyyaml".
  attrName =
    requirement: lowercase (builtins.head (builtins.match "[[:space:]]*([A-Za-z0-9._-]+).*" requirement));

  # Type stubs (types-*) only serve mypy's strict run in the dev venv; the Nix build runs no mypy.
  isStub = name: builtins.substring 0 6 name == "types-";
in
{
  # Runtime: `dependencies` of buildPythonApplication.
  dependencies = map attrName pyproject.project.dependencies;
  # The `dev` extra: tests and linters (nativeCheckInputs, the devShell).
  dev = builtins.filter (name: !isStub name) (
    map attrName pyproject.project.optional-dependencies.dev
  );
}
