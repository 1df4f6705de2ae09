"""PowerShell as the hosts run it: facts from Microsoft's sources, a parser, and a checker.

- `facts`: commands, parameter sets and Hyper-V behaviour, as data with their sources
  (resources/powershell/facts/).
- `syntax`: PowerShell parsed with a real grammar (tree-sitter-powershell).
- `check`: every PowerShell text the project ships or generates, held to those facts.
"""
