"""``python -m dse.cli``: the ``dse`` command."""

import sys

from . import main

sys.exit(main())
