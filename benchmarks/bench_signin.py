"""Sign-in time against a real directory (the Samba AD DC of tests/samba.py), median of 20.

    python benchmarks/bench_signin.py          prints the figures (needs root and Samba)
    pytest benchmarks/bench_signin.py          the same through pytest-benchmark
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.directory import LdapDirectory  # noqa: E402
from tests import samba  # noqa: E402
from tests.samba import SambaDC, SambaMissing, running_samba  # noqa: E402

samba_dc = samba.samba_dc  # the tests' fixture, bound by name for this module's benchmark

ROUNDS = 20


def sign_in_times(dc: SambaDC, start_tls: bool = False, rounds: int = ROUNDS) -> list[float]:
    config = dc.config(urls=[dc.ldap_url], start_tls=True) if start_tls else dc.config()
    directory = LdapDirectory(config)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        identity = directory.sign_in("alice", dc.passwords["alice"])
        times.append(time.perf_counter() - started)
        assert identity.name == "LAB\\alice"
    return times


def test_sign_in_speed(benchmark, samba_dc: SambaDC) -> None:  # type: ignore[no-untyped-def]
    directory = LdapDirectory(samba_dc.config())
    identity = benchmark.pedantic(directory.sign_in, args=("alice", samba_dc.passwords["alice"]),
                                  rounds=ROUNDS, iterations=1)
    assert len(identity.groups) >= 3
    print(f"\nsign-in median {benchmark.stats.stats.median * 1000:.1f} ms; Samba started in "
          f"{samba_dc.start_seconds:.2f} s ({'provisioned' if samba_dc.provisioned else 'cached'})")


def main() -> int:
    try:
        with running_samba() as dc:
            print(f"Samba AD DC ready in {dc.start_seconds:.2f} s "
                  f"({'provisioned now' if dc.provisioned else 'from the cache'})")
            for label, start_tls in (("LDAPS", False), ("StartTLS", True)):
                times = sign_in_times(dc, start_tls)
                print(f"sign-in over {label:<8} median {statistics.median(times) * 1000:6.1f} ms, "
                      f"min {min(times) * 1000:6.1f} ms, max {max(times) * 1000:6.1f} ms ({len(times)} runs)")
    except SambaMissing as missing:
        print(f"Samba AD DC unavailable: {missing}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
