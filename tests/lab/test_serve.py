"""`hvconsole lab serve` as a person runs it, and the Lab runner, answering a real pywinrm client."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from winrm.protocol import Protocol

from console import scripts
from lab.hyperv import Durations
from lab.runner import Lab

WEB01 = "42e4aaca-7231-5411-b96b-d03849b0dae1"


def run(url: str, user: str, password: str, operation: str, ca_file: Path | None = None,
        **params) -> dict:
    """One operation as the console sends it: pywinrm, NTLM (sealed over HTTP) or HTTPS."""
    protocol = Protocol(endpoint=url, transport="ntlm", username=user, password=password,
                        server_cert_validation="validate", ca_trust_path=str(ca_file) if ca_file else None,
                        message_encryption="auto")
    shell = protocol.open_shell(codepage=65001)
    try:
        executable, args, stdin = scripts.command(operation, params)
        command = protocol.run_command(shell, executable, args)
        protocol.send_command_input(shell, command, stdin.encode("ascii"), end=True)
        out, err, code = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
    finally:
        protocol.close_shell(shell)
    assert code == 0, err
    return json.loads(out)


def test_serve_answers_pywinrm_and_saves_its_state_on_sigint(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "hvconsole", "lab", "serve", "--speed", "0", "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not lines or not lines[-1].startswith("Ready."):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stdout.readline().rstrip("\n"))  # type: ignore[union-attr]
        urls = dict(re.findall(r"^  (HV\d+) (http://127\.0\.0\.1:\d+/wsman)$", "\n".join(lines), re.M))
        assert set(urls) == {"HV01", "HV02", "HV03"}
        assert "  LAB\\adam adam-demo (host administrator)" in lines
        assert not any("dan" in line for line in lines)  # disabled: cannot sign in anywhere
        inventory = run(urls["HV01"], "LAB\\adam", "adam-demo", "inventory")
        assert {vm["name"] for vm in inventory["data"]["vms"]} >= {"shop-web01", "shop-db01"}
        saved = run(urls["HV01"], "LAB\\adam", "adam-demo", "power", vm_id=WEB01, action="save")
        assert saved["data"]["vm"]["state"] == "Saved"
        denied = run(urls["HV01"], "LAB\\henry", "henry-demo", "power", vm_id=WEB01, action="start")
        assert denied["error"]["code"] == "access_denied"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Lab stopped." in out and err == ""
    document = json.loads(state.read_text())
    web01 = next(v for v in document["hosts"]["HV01"]["vms"] if v["id"] == WEB01)
    assert web01["state"] == "Saved"


def test_lab_runner_over_https_with_a_generated_world() -> None:
    with Lab.start(hosts=2, vms_per_host=5, https=True, durations=Durations.instant()) as lab:
        assert set(lab.hosts) == {"HV001", "HV002"} and lab.ca_file is not None
        user, password = lab.admin
        handle = lab.hosts["HV002"]
        assert handle.url.startswith("https://127.0.0.1:")
        data = run(handle.url, user, password, "inventory", ca_file=lab.ca_file)["data"]
        assert data["host"] == "HV002" and len(data["vms"]) == 5
        vm = next(v for v in data["vms"] if v["state"] == "Running")
        run(handle.url, user, password, "power", ca_file=lab.ca_file, vm_id=vm["id"], action="pause")
        assert handle.host.vm(vm["id"]).state == "Paused"
        assert handle.executor.calls_of("Suspend-VM")[-1].user == user
        assert handle.events.where(event="Suspend-VM", outcome="ok")[0]["vm_id"] == vm["id"]


def test_lab_restores_a_saved_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Lab.start(durations=Durations.instant(), state=state) as lab:
        lab.hosts["HV01"].host.power(WEB01, "turnoff")
        assert lab.save() == state
    with Lab.start(durations=Durations.instant(), state=state) as lab:
        assert lab.hosts["HV01"].host.vm(WEB01).state == "Off"
