"""`python -m switch.cli ...`: the same as the `cardswitch` console script."""

import sys

from switch.cli import main

sys.exit(main())
