"""A PowerShell interpreter for the lab: it runs the text the console sends (the operation
scripts, the generated JEA functions) over tree-sitter-powershell's syntax tree, judged by
Microsoft's facts (console.powershell.facts), so a script that is wrong PowerShell fails in the
lab as it would on a Windows host.

- `values`: the values scripts see and the contract with Python cmdlets (Call, Command, PSError).
"""
from .values import (Call, Cmdlet, Command, ErrorRecord, Hashtable, Outcome, Provider, PSEnum,
                     PSError, PSObject)

__all__ = ["Call", "Cmdlet", "Command", "ErrorRecord", "Hashtable", "Outcome", "PSEnum",
           "PSError", "PSObject", "Provider"]
