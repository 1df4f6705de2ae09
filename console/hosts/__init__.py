"""Host operations over WinRM: one client per Hyper-V host, and a pool per session.

Two endpoints answer alike (the same operations, results and errors; the tests run both):
- `admin.HostClient`, the default endpoint over WinRS, for host administrators: each operation
  is one `powershell -Command -` with the operation's script on its standard input;
- `jea.JeaClient`, the JEA endpoint over PSRP, for delegated users: the generated functions of
  console/jea.py, which check each caller against the grants the host holds.

`pool.HostPool` holds a session's clients: reads fan out in parallel, actions queue per host,
every call returns a future. The first 401 from any host closes the session's CredentialGate.
"""
from .admin import HostClient
from .client import Client, confirm
from .credentials import CredentialGate, Credentials
from .jea import JeaClient, Lag, lag
from .network import network_error
from .outcomes import (
    ERRORS, ActionOutcome, HostResult, HostStatus, PoolResult, answer_data, status_of,
)
from .pool import MAX_READ_WORKERS, HostPool, make_client

__all__ = [
    "ERRORS", "MAX_READ_WORKERS", "ActionOutcome", "Client", "CredentialGate", "Credentials",
    "HostClient", "HostPool", "HostResult", "HostStatus", "JeaClient", "Lag", "PoolResult",
    "answer_data", "confirm", "lag", "make_client", "network_error", "status_of",
]
