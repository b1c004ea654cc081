"""An API key file as the units read it (scripts/write-api-key-env.sh), for probe and doctor."""

from __future__ import annotations

from pathlib import Path


class BadKeyFile(ValueError):
    """An API key file that cannot be read or holds no usable key (the message never holds the key)."""


def read_api_key(path: str | Path) -> str:
    """The key as the units read it (scripts/write-api-key-env.sh: the file's first line, as is).

    Raises BadKeyFile naming the file and what is wrong, never the key."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise BadKeyFile(f"cannot read {path}: {err.strerror or err}") from None
    first = raw.split(b"\n", 1)[0]
    if not first:
        raise BadKeyFile(f"{path} is empty (its first line is the key)")
    try:
        key = first.decode("utf-8")
    except UnicodeDecodeError:
        raise BadKeyFile(f"{path}: the key (its first line) is not UTF-8 text") from None
    if not all(0x21 <= ord(ch) <= 0x7E for ch in key):
        # httpx would refuse the header and quote it in its error.
        raise BadKeyFile(
            f"{path}: the key (its first line) holds spaces, control or non-ASCII characters, which an"
            " HTTP Authorization header cannot carry"
        )
    return key
