"""``python -m cvkit`` is the ``cvkit`` command."""

import sys

from cvkit.cli import main

sys.exit(main())
