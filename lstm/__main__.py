"""``python -m lstm`` and the ``backprop-lens`` console script; the commands live in `lstm.cli`."""

import sys

from lstm.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
