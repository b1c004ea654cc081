"""tgi-nix: declarative Hugging Face TGI instances for NixOS, in podman."""

__version__ = "0.1.0"
