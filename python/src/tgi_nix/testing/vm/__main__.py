"""`python -m tgi_nix.testing.vm`: build the cached VM image (or install host tools) and print its folder."""

from __future__ import annotations

import argparse
import sys
import time

from .errors import log
from .host import install_host_deps, missing_host_packages
from .image import ensure_image, image_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tgi_nix.testing.vm", description=__doc__.splitlines()[0].strip("`")
    )
    parser.add_argument("--install-host-deps", action="store_true", help="apt-get install missing host tools")
    parser.add_argument("--check", action="store_true", help="only report missing host tools")
    parser.add_argument("--rebuild", action="store_true", help="build even if the cache has this image")
    parser.add_argument("--print-key", action="store_true", help="print the cache key and exit")
    args = parser.parse_args(argv)
    if args.print_key:
        print(image_key())
        return 0
    if args.install_host_deps:
        install_host_deps()
    if args.check:
        missing = missing_host_packages()
        print("missing: " + " ".join(missing) if missing else "all host tools present")
        return 1 if missing else 0
    if args.install_host_deps and not args.rebuild:
        return 0
    t0 = time.monotonic()
    image = ensure_image(rebuild=args.rebuild)
    log(f"image ready in {time.monotonic() - t0:.1f} s")
    print(image.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
