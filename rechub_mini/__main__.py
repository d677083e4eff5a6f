"""`python -m rechub_mini ...`: see rechub_mini/cli.py."""
import sys

from .cli import main

sys.exit(main())
