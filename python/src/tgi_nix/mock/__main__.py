"""`python -m tgi_nix.mock`: the mock server, with `text-generation-launcher`'s arguments."""

import sys

from .main import main

sys.exit(main())
