"""`python -m rechub_mini ...`: see rechub_mini/cli.py."""
import sys

from .cli import main

if __name__ == "__main__":  # not again in the worker processes of preprocess (they import it)
    sys.exit(main())
