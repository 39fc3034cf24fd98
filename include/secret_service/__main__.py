"""Entry point of ``python -m include.secret_service``."""

import sys

from include.secret_service.cli import main

sys.exit(main())
