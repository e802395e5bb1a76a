"""``python -m icesat2sr.cli``."""

import sys

from . import main

sys.exit(main())
