"""A PowerShell interpreter for the lab: it runs the text the console sends (the operation
scripts, the generated JEA functions) over tree-sitter-powershell's syntax tree, judged by
Microsoft's facts (console.powershell.facts), so a script that is wrong PowerShell fails in the
lab as it would on a Windows host.

- `values`: the values scripts see and the contract with Python cmdlets (Call, Command, PSError).
- `runspace.Runspace`: runs a script (`run`) or a script block with arguments (`invoke`).
- `builtins.BUILTINS`: Windows PowerShell 5.1's own cmdlets the scripts use (Where-Object,
  ConvertTo-Json, Split-Path, Get-ChildItem, ...), over a `Provider`.
- `provider.MemoryProvider`: a file system, registry and drives in memory.
"""
from .builtins import BUILTINS, builtins
from .provider import MemoryProvider, file_attributes
from .runspace import Runspace
from .values import (Call, Cmdlet, Command, ErrorRecord, Hashtable, Outcome, Provider, PSEnum,
                     PSError, PSObject)

__all__ = ["BUILTINS", "Call", "Cmdlet", "Command", "ErrorRecord", "Hashtable", "MemoryProvider",
           "Outcome", "PSEnum", "PSError", "PSObject", "Provider", "Runspace", "builtins",
           "file_attributes"]
