"""The console's log: a rotating file under the platform's user log folder, never holding a secret.

Every record passes a redacting filter before it is written: `password=...`-style values,
Authorization headers, NTLM/Negotiate tokens, and each exact secret registered at run time with
`redact(secret)` (the sign-in code registers the password it was given) become `***`. The filter
works on the finished text (message, arguments, traceback), so a password inside an exception's
repr is caught too.

Every record is one line: the message is written with `one_line` (console/text.py), so a user
or VM name holding a line break (or a terminal control) cannot forge a record of its own, and a
traceback under it is indented line by line (`log_block`), so none of its lines starts like a
record.
"""
from __future__ import annotations

import logging
import logging.handlers
import re
import threading
from collections import deque
from pathlib import Path

from .config import user_log_dir
from .text import log_block, one_line

LOG_NAME = "hvconsole.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
MASK = "***"
FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

# key=value, key: value, "key": "value", key='value' for every key that names a secret.
_SECRET_KEYS = r"password|passwd|pwd|unicodePwd|secret|client_secret|token|api_key|apikey"
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (["']?\b(?:{_SECRET_KEYS})\b["']?\s*[=:]\s*)        # the key and its separator
    ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&)}}\]]+)  # a quoted or bare value
    """)
# Authorization / WWW-Authenticate / Proxy-Authorization headers, as text or as a dict repr.
_AUTH_HEADER = re.compile(
    r"""(?ix)
    (\b(?:proxy-)?(?:authorization|www-authenticate|authenticate)["']?\s*[:=]\s*["']?)
    ((?:negotiate|ntlm|kerberos|basic|bearer|digest)\s+)?
    [^\s"',}]+""")
# A scheme word followed by a token anywhere else (e.g. inside an exception message).
_SCHEME_TOKEN = re.compile(r"(?i)\b(negotiate|ntlm|kerberos|basic|bearer)\s+[A-Za-z0-9+/=._~-]{12,}")
# NTLMSSP messages: base64 ("TlRMTVNTUA...") or a bytes repr (b'NTLMSSP\x00...').
_NTLM_TOKEN = re.compile(r"TlRMTVNTUA[A-Za-z0-9+/=]*|NTLMSSP\\x00[^'\"\s]*")

_known: set[str] = set()
_lock = threading.Lock()


def redact(secret: str) -> None:
    """Never write `secret` to the log from now on (this process), in any record of any logger."""
    if not secret:
        return
    with _lock:
        _known.add(secret)
        escaped = secret.encode("unicode_escape").decode("ascii")  # as it appears inside a repr
        if escaped != secret:
            _known.add(escaped)


def scrub(text: str) -> str:
    """`text` with every known secret and secret-shaped value replaced by `***`."""
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)  # longest first: no partial leftovers
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _NTLM_TOKEN.sub(MASK, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    text = _SCHEME_TOKEN.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{_mask_value(m.group(2))}", text)


def _mask_value(value: str) -> str:
    if value[:1] in {'"', "'"} and value[-1:] == value[:1] and len(value) >= 2:
        return value[0] + MASK + value[0]
    return MASK


class RedactingFilter(logging.Filter):
    """Rewrites each record into its scrubbed final text (message, traceback, stack)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class LineFormatter(logging.Formatter):
    """FORMAT with the message on its line (`one_line`) and any traceback or stack indented under
    it (`log_block`): data written by others never starts a line of the log."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + log_block(record.exc_text)
        if record.stack_info:
            text += "\n" + log_block(self.formatStack(record.stack_info))
        return text


def log_folder() -> Path:
    """The folder holding the log files (the Help menu opens it)."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_hvconsole", False):
            return Path(handler.baseFilename).parent  # type: ignore[attr-defined]
    return user_log_dir()


def log_file() -> Path:
    return log_folder() / LOG_NAME


def setup_logging(level: int | str = logging.INFO, folder: Path | None = None) -> Path:
    """Log to a rotating file (1 MB x 5) in `folder` (the user log folder by default).

    Calling it again replaces the console's handler (a new level or folder), never doubles it.
    Returns the log file's path.
    """
    folder = folder or user_log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stop_logging()
    root = logging.getLogger()
    handler = logging.handlers.RotatingFileHandler(
        folder / LOG_NAME, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    handler._hvconsole = True  # type: ignore[attr-defined]
    handler.setFormatter(LineFormatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    return folder / LOG_NAME


def stop_logging() -> None:
    """Close and remove the console's file handler (at exit, or between tests)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_hvconsole", False)]:
        root.removeHandler(old)
        old.close()


def last_lines(count: int = 200, path: Path | None = None) -> list[str]:
    """The last `count` lines of the log (empty when there is no log yet)."""
    path = path or log_file()
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            return [line.rstrip("\n") for line in deque(stream, maxlen=count)]
    except OSError:
        return []
