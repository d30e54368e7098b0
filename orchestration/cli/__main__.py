"""``python -m orchestration.cli``: the ``citybrain`` command without its console script."""

import sys

from orchestration.cli import main

sys.exit(main())
