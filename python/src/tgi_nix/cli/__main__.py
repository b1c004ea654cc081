"""`python -m tgi_nix.cli`, as the VM harness runs the CLI from a source tree."""

import sys

from . import main

sys.exit(main())
