"""The default endpoint over PSRP (administrators, `protocol = "psrp"`): a kept PowerShell
session per host on the configuration Microsoft.PowerShell.

Each operation is the very script the WinRS path sends (console.scripts: the prelude and the
operation's script, its parameters one base64 JSON document on the first line), run with
`PowerShell.AddScript` in the session's full language; its output is the one JSON document
`answer_data` reads (docs/host-operations.md). The session is console.hosts.psrp's: opened once,
reads and actions on it, no process started on the host per operation.
"""
from __future__ import annotations

import json
from typing import Any

from .. import scripts
from ..config import HostConfig
from ..errors import HostTimeout, InvalidParameter
from .credentials import CredentialGate, Credentials
from .outcomes import ActionOutcome, answer_data, log_warning
from .operations import ScriptOperations
from .psrp import Pipeline, PsrpClient, texts

DEFAULT_CONFIGURATION = "Microsoft.PowerShell"


class AdminClient(ScriptOperations, PsrpClient):
    """One host's default endpoint over PSRP: HostClient's operations, results and errors."""

    def __init__(self, config: HostConfig, credentials: Credentials | None = None,
                 gate: CredentialGate | None = None) -> None:
        super().__init__(config, credentials, gate, configuration_name=DEFAULT_CONFIGURATION,
                         described=f"its default PowerShell endpoint {DEFAULT_CONFIGURATION}")

    def run_script(self, text: str) -> Any:
        """Run a script of the caller's own on the session and return the `data` of the one
        answer document it prints (the operations' shape, docs/host-operations.md), or raise its
        error code's exception. Only the host selftest's set-up and clean-up scripts use it
        (console/selftest.py). Like an action it is never sent twice; a script that outlasts the
        timeout raises HostTimeout (it may still finish on the host). Refused before anything is
        sent when a host would not take it: ASCII only, at most 64 KB."""
        if not text.isascii() or len(text) > scripts.STDIN_LIMIT:
            raise InvalidParameter(f"This script is not for a host: it must be ASCII and at most "
                                   f"{scripts.STDIN_LIMIT} characters ({len(text)}).")
        done = self._act(lambda ps: ps.add_script(text), "script", "")
        if isinstance(done, ActionOutcome):
            raise HostTimeout(f"{self.name} did not finish the script within "
                              f"{self.config.timeout:g} s; it may still finish there.",
                              host=self.name)
        return self._document(done)

    # --- the scripts ---

    def _read_operation(self, operation: str, params: dict[str, Any]) -> Any:
        text = _script(operation, params)  # InvalidParameter before anything is sent
        return self._document(self._read(lambda ps: ps.add_script(text)))

    def _act_operation(self, operation: str, params: dict[str, Any], vm_id: str) -> ActionOutcome:
        text = _script(operation, params)
        done = self._act(lambda ps: ps.add_script(text), operation, vm_id)
        if isinstance(done, ActionOutcome):
            return done  # pending
        data = self._document(done, vm_id)
        return ActionOutcome.done(data, f"{operation} {params.get('action')} done on {self.name}.",
                                  warning=log_warning(self.name, _answer(done)))

    def _document(self, pipeline: Pipeline, vm_id: str | None = None) -> Any:
        """The `data` of the one JSON document the script printed; the host's error code as its
        exception. Error records are shown only when there is no document (as stderr is)."""
        found = texts(pipeline.output)
        document = _answer(pipeline)
        shown = ("\n".join(found) or "; ".join(str(e) for e in pipeline.errors)
                 or "nothing")
        return answer_data(self.name, document, shown, vm_id)


def _answer(pipeline: Pipeline) -> Any:
    """The one JSON document the script printed, or None."""
    found = texts(pipeline.output)
    try:
        return json.loads(found[0]) if len(found) == 1 else None
    except ValueError:
        return None


def _script(operation: str, params: dict[str, Any]) -> str:
    """The script the WinRS path sends on powershell.exe's standard input, refused alike when a
    host would not take it (console.scripts.command)."""
    return scripts.command(operation, params)[2]
