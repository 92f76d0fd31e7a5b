"""``python -m examples.desktop``; also the entry script of the PyInstaller bundle."""

import sys

from examples.desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
