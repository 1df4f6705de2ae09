"""Entry point of the frozen application: the same `hvconsole` command line as a checkout."""
from __future__ import annotations

import os
import sys

# A windowed Windows build has no console: print() and argparse would fail on a None stream.
for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process

from hvconsole.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
