"""The HTML review report rendered by a real browser (headless Chromium): its text is what a
person reads, and no name in it runs as markup."""
from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path


from console import review
from console.inventory import VM, HostFacts
from lab.world import load_world
from console.paths import LAB_DATA
from console.policy import Policy
from tests.support import service_missing

HOSTILE = 'evil<img src=x onerror="document.title=\'pwned\'">'
SCRIPT = """<script>document.title = "pwned & 'owned'"</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    service_missing("Chromium (apt-get install -y chromium)")
    raise AssertionError  # not reached


def render(path: Path) -> str:
    out = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_demo_report_renders_with_findings_matrix_and_impact(tmp_path: Path) -> None:
    world = load_world()
    policy = Policy.load(LAB_DATA / "policy.toml")
    inventory = {h.name: [VM.from_json(h.name, d) for d in h.host.inventory()["vms"]]
                 for h in world.hosts}
    facts = {h.name: HostFacts.from_json(h.host.host_facts(["D:\\ISO\\"])) for h in world.hosts}
    # an undocumented VM whose name is markup
    inventory["HV03"].append(VM("HV03", "11111111-2222-4333-8444-555555555555", HOSTILE, "Off"))
    inventory["HV01"].append(VM("HV01", "11111111-2222-4333-8444-666666666666", SCRIPT, "Off"))
    r = review.build_review(policy, inventory, facts, today=date(2026, 11, 26))
    page = tmp_path / "review.html"
    page.write_text(review.to_html(r), encoding="utf-8")
    dom = render(page)
    assert "<title>Delegation review</title>" in dom  # the script never ran: title unchanged
    assert "<img" not in dom
    assert "evil&lt;img" in dom  # shown as text
    assert "<script" not in dom
    shown = "&lt;script&gt;document.title = \"pwned &amp; 'owned'\"&lt;/script&gt;"
    assert dom.count(shown) >= 3  # a finding, a row of the matrix, a row of HV01's guests
    findings, matrix, impact = (dom.index(s) for s in (
        'id="findings"', 'id="permissions"', 'id="impact"'))
    assert findings < matrix < impact
    assert "3 tiers of shop (app, db, web) run on HV01" in dom
    assert "LAB\\HV-Shop-Owners" in dom and "shop-web02" in dom
    assert "Planned maintenance" in dom or "will be taken down for maintenance" in dom
