"""Command groups of `hvconsole`; each module exposes register(subparsers)."""
