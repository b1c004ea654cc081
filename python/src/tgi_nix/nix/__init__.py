"""The Nix bridge: `nix-instantiate` evaluates the core for unit facts; Python values as Nix text."""
