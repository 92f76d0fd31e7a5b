"""``python -m edgesbert.cli``: the ``edgesbert`` command."""

import sys

from edgesbert.cli import main

sys.exit(main())
