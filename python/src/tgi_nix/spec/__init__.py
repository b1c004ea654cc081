"""The spec: the pydantic schema of an instance, loading TOML spec files into it, and the option
metadata (Nix types, defaults, docs) derived from the schema."""

from .loader import load_spec, parse_spec, spec_toml
from .schema import DEFAULT_IMAGE, Instance, Spec

__all__ = ["DEFAULT_IMAGE", "Instance", "Spec", "load_spec", "parse_spec", "spec_toml"]
