"""`hvconsole whoami`: sign in and show who the directory says you are, groups included."""
from __future__ import annotations

import argparse

from ..audit import AuditTrail
from ..config import Config
from ..identity import WELL_KNOWN_LOGON_SIDS, Identity
from ..session import demo_directory, open_directory, record_warnings, ticket_identity
from ..text import one_line
from . import add_sign_in_options, extensions, print_json, read_password, sso_requested, warn


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("whoami", help="sign in to the directory and show your identity and groups")
    add_sign_in_options(p, prompt=True)
    p.add_argument("--json", action="store_true", help="print the identity as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Signing in needs only a directory: with --demo, the demo directory (and no hosts).
    sso = sso_requested(args)
    if args.demo:
        demo = demo_directory(extensions(args))
        identity = (ticket_identity(demo) if sso
                    else demo.sign_in(args.user, read_password(args)))
    else:
        config = Config.load(args.config) if args.config else Config.load()
        directory = open_directory(config)
        warn(config.directory.warnings)
        identity = (ticket_identity(directory) if sso
                    else directory.sign_in(args.user, read_password(args)))
        record_warnings(AuditTrail(config.audit_file), config, identity)
    if args.json:
        print_json(as_json(identity))
    else:
        print(as_text(identity))
    return 0


def as_json(identity: Identity) -> dict[str, object]:
    return {
        "name": identity.name, "sid": identity.sid, "display_name": identity.display_name,
        "upn": identity.upn, "dn": identity.dn, "mail": identity.mail, "demo": identity.demo,
        "groups": [{"name": g.name, "sid": g.sid, "dn": g.dn, "nested": g.nested}
                   for g in identity.groups],
        "well_known": [{"name": name, "sid": sid} for sid, name in WELL_KNOWN_LOGON_SIDS.items()],
        "warning": identity.extra.get("warning", ""),
    }


def as_text(identity: Identity) -> str:
    title = identity.name + (f" ({identity.display_name})" if identity.display_name else "")
    lines = [one_line(title + ("  [demo directory]" if identity.demo else ""))]
    for label, value in (("SID", identity.sid), ("UPN", identity.upn), ("DN", identity.dn),
                         ("Mail", identity.mail)):
        if value:
            lines.append(f"  {label:<6}{one_line(value)}")
    rows = [(g.name, g.sid, "nested" if g.nested else "") for g in identity.groups]
    rows += [(name, sid, "well-known") for sid, name in WELL_KNOWN_LOGON_SIDS.items()]
    width = max(len(one_line(name)) for name, _, _ in rows)
    sid_width = max(len(sid) for _, sid, _ in rows)
    lines.append(f"Groups ({len(rows)}):")
    lines += [f"  {one_line(name):<{width}}  {sid:<{sid_width}}  {note}".rstrip()
              for name, sid, note in rows]
    if identity.extra.get("warning"):
        lines.append("Warning: " + one_line(identity.extra["warning"]))
    return "\n".join(lines)
