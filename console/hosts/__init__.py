"""Host operations over WinRM: one client per Hyper-V host, and a pool per session.

Two endpoints, three clients, answering alike (the same operations, results and errors; the
tests run all three):
- `default.AdminClient`, the default endpoint (Microsoft.PowerShell) over PSRP, for host
  administrators: the operation's script run on a PowerShell session kept open per host
  (`psrp.PsrpClient`), so an operation starts no process on the host;
- `admin.HostClient`, the default endpoint over WinRS, the fallback where only WinRS is allowed
  (`protocol = "winrs"`): each operation is one `powershell -Command -` with the operation's
  script on its standard input;
- `jea.JeaClient`, the JEA endpoint over PSRP on a kept session too, for delegated users: the
  generated functions of console/jea.py, which check each caller against the grants the host
  holds.

`pool.HostPool` holds a session's clients: reads fan out in parallel, actions queue per host,
every call returns a future. The first 401 from any host closes the session's CredentialGate.
"""
from .admin import HostClient
from .client import Client, confirm
from .credentials import CredentialGate, Credentials
from .default import AdminClient
from .jea import JeaClient, Lag, lag
from .network import network_error
from .outcomes import (
    ERRORS, ActionOutcome, HostResult, HostStatus, PoolResult, answer_data, status_of,
)
from .pool import MAX_READ_WORKERS, HostPool, admin_client, make_client
from .psrp import MAX_RUNSPACES, PsrpClient

__all__ = [
    "ERRORS", "MAX_READ_WORKERS", "MAX_RUNSPACES", "ActionOutcome", "AdminClient", "Client",
    "CredentialGate", "Credentials", "HostClient", "HostPool", "HostResult", "HostStatus",
    "JeaClient", "Lag", "PoolResult", "PsrpClient",
    "answer_data", "confirm", "lag", "admin_client", "make_client", "network_error", "status_of",
]
