"""Generators: NixOS modules, systemd units, options docs and Kubernetes manifests from a spec, and the
validation that runs them through Nix and systemd."""
