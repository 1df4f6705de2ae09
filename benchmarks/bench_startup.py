"""How fast the frozen one-folder build starts: its size, `--version` (process start and imports)
and `demo --smoke` (start, the lab, the sign-in dialog driven headless, the VM list), which bounds
the time to the sign-in dialog from above.

Run on demand: `python3 dev.py bench -k startup`. HVCONSOLE_DIST=<folder holding hvconsole/>
reuses a build; otherwise one is made into a temporary folder first (about 15 s). Goals: under
150 MB, under 2 s to the sign-in dialog.
"""
from __future__ import annotations

import os
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The build script's own measure (links inside the bundle counted once).
folder_size = runpy.run_path(str(ROOT / "installer" / "build"))["folder_size"]


def _median_seconds(command: list[str], env: dict[str, str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_frozen_start(tmp_path: Path) -> None:
    dist = Path(os.environ.get("HVCONSOLE_DIST") or tmp_path / "dist")
    if not (dist / "hvconsole").exists():
        subprocess.run([sys.executable, str(ROOT / "installer" / "build"), "--dist", str(dist),
                        "--work", str(tmp_path / "work")], check=True, capture_output=True)
    app = dist / "hvconsole" / ("hvconsole.exe" if os.name == "nt" else "hvconsole")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home")}
    size = folder_size(dist / "hvconsole") / 1e6
    version = _median_seconds([str(app), "--version"], env)
    smoke = _median_seconds([str(app), "demo", "--smoke"], env)
    print(f"\nfrozen build: {size:.1f} MB; --version {version:.2f} s; "
          f"demo --smoke (start to listed VMs) {smoke:.2f} s (medians of 5)")
    assert size < 150 and smoke < 2.0
