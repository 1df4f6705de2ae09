"""Who is signed in: a user and every SID of their logon token.

A person is identified by SID, never by name. The groups are every SID the host's token would
carry: tokenGroups (nested groups and the primary group) plus the well-known SIDs of any domain
logon, so the console and the host decide alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

EVERYONE = "S-1-1-0"
AUTHENTICATED_USERS = "S-1-5-11"
WELL_KNOWN_LOGON_SIDS: dict[str, str] = {
    EVERYONE: "Everyone",
    AUTHENTICATED_USERS: "NT AUTHORITY\\Authenticated Users",
}


@dataclass(frozen=True)
class Group:
    sid: str
    name: str  # DOMAIN\name, or a well-known name
    dn: str = ""
    nested: bool = False  # reached through another group, not a direct membership


@dataclass(frozen=True)
class Identity:
    sid: str
    name: str  # DOMAIN\sAMAccountName
    display_name: str = ""
    upn: str = ""
    dn: str = ""
    mail: str = ""
    groups: tuple[Group, ...] = ()
    demo: bool = False  # signed in against the embedded demo directory
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def sam_account_name(self) -> str:
        return self.name.split("\\", 1)[-1]

    @property
    def sids(self) -> frozenset[str]:
        """Every SID of the token: the user, its groups, and the well-known logon SIDs."""
        return frozenset({self.sid, *(g.sid for g in self.groups), *WELL_KNOWN_LOGON_SIDS})

    def name_of(self, sid: str) -> str:
        """A readable name for one of this identity's SIDs (for explanations)."""
        if sid == self.sid:
            return self.name
        for group in self.groups:
            if group.sid == sid:
                return group.name
        return WELL_KNOWN_LOGON_SIDS.get(sid, sid)

    def group(self, sid: str) -> Group | None:
        return next((g for g in self.groups if g.sid == sid), None)

    def __str__(self) -> str:
        return self.name
