"""`python -m rechub_mini ...`: see rechub_mini/cli.py."""
import sys

from .cli import main

if __name__ == "__main__":  # the usual guard: importing this module runs nothing
    sys.exit(main())
