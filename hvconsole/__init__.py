"""The application: the core (`console`), the desktop console (`ui`) and, when the build ships
it, the demo lab (`lab`) put together.

This is the only package that imports all three; the core never names the others, and the
desktop console never names the lab (the import contracts in pyproject.toml hold them to it).
"""
