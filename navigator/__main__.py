"""`python -m navigator`: the `navigator` command, for launchers that start modules (torchrun -m navigator train)."""

import sys

from navigator.console import main

sys.exit(main())
