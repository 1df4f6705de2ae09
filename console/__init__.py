"""The core of the Hyper-V Delegation Console: no Qt below this package."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hvconsole")
except PackageNotFoundError:  # a frozen build or a bare checkout
    __version__ = "0.1.0"
