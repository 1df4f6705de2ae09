"""The PySide6 desktop console: widgets, item models and background workers."""
