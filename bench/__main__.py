"""`python -m bench [--profile full|quick]`: see bench/README.md."""

import sys

from bench.runner import main

sys.exit(main())
