"""The script checker over everything the project ships or generates, cold (its caches cleared):
what `tools/pscheck.py` and the tests pay. Goal: under 2 s on the CI machine.

Run on demand: `.venv/bin/python -m pytest benchmarks/bench_pscheck.py -s`.
"""
from __future__ import annotations

import time

from console.paths import RESOURCES
from console.powershell import check
from tests.support import tool

ROOT = RESOURCES.parent


def test_checking_everything_cold() -> None:
    pscheck = tool("pscheck")
    data = pscheck.collect(ROOT, pscheck.POLICIES)
    texts = list(pscheck.texts(data))
    check._check.cache_clear()  # the checker caches results and tokens: a cold run
    check._file_tokens.cache_clear()
    started = time.perf_counter()
    for text in texts:
        text.findings()
    seconds = time.perf_counter() - started
    print(f"\nchecking {len(texts)} PowerShell texts cold: {seconds:.2f} s")
    assert seconds < 2.0
