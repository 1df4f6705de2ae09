"""`hvconsole`: the command line, or the desktop console when started without a command (as the
Start menu does)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from console import cli
from console.session import Extensions


def extensions() -> Extensions:
    """The demo and the lab's commands when the lab is part of this build; none otherwise."""
    from . import demo

    try:
        import lab.commands
        from lab.demo import demo_setup
        from lab.directory import LabDirectory
    except ImportError:
        return Extensions(commands=(demo,))
    return Extensions(demo_directory=LabDirectory, demo_world=demo_setup,
                      commands=(demo, lab.commands))


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(extensions())


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 1:
        return gui()
    return cli.main(argv, extensions())


def gui() -> int:
    """The desktop console: first run, sign-in, the main window."""
    from ui.main import start

    from .demo import run_demo

    ext = extensions()
    return int(start(extensions=ext, run_demo=(lambda: run_demo(ext)) if ext.demo_world else None))
