"""What the shared workspace keeps in NATS: accounts, API keys, sessions, alert triage, audit events.

These are stored (KV values, audit stream messages) and read back by every web front and by
`sluice user`, so they are wire types like the rest. No secrets are stored: passwords as
argon2 hashes, API keys and session tokens as SHA-256 digests of high-entropy random tokens.
"""

from __future__ import annotations

import enum

import msgspec


class Role(enum.StrEnum):
    """What an account may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"        # read verdicts, file pages, safe (neutered) downloads
    SUBMITTER = "submitter"  # + submit and resubmit
    ANALYST = "analyst"      # + triage alerts, comment, raw downloads on explicit choice
    ADMIN = "admin"          # + audit log, accounts

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def may(self, needed: Role) -> bool:
        return self.rank >= needed.rank


USERNAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # also a NATS KV key token


class User(msgspec.Struct, omit_defaults=True):
    name: str
    role: Role
    password_hash: str = ""  # argon2id; empty for an account that signs in only through OpenID Connect
    created_at: float = 0.0
    oidc_subject: str = ""  # "issuer subject" of the OpenID Connect identity bound to this account


class ApiKey(msgspec.Struct, omit_defaults=True):
    """An API key for scripts. The token is shown once; only its SHA-256 is kept."""

    key_id: str
    user: str
    digest: str
    created_at: float
    expires_at: float  # epoch seconds; 0: never
    label: str = ""
    revoked_at: float = 0.0


class Session(msgspec.Struct, omit_defaults=True):
    """A signed-in browser: the cookie holds a random token, the KV key is its SHA-256."""

    user: str
    role: Role
    csrf: str
    created_at: float
    expires_at: float
    via: str = "password"  # or "oidc"


class TriageState(enum.StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    MALICIOUS = "malicious"
    BENIGN = "benign"
    FALSE_POSITIVE = "false_positive"


class Comment(msgspec.Struct):
    user: str
    at: float
    text: str


class Triage(msgspec.Struct, omit_defaults=True):
    """An alert's triage, one KV value per submission id (revision-checked updates)."""

    sid: str
    state: TriageState = TriageState.NEW
    owner: str = ""
    comments: list[Comment] = []
    updated_at: float = 0.0
    updated_by: str = ""


class AuditEvent(msgspec.Struct, omit_defaults=True):
    """Who did what, published on `<prefix>.audit.<action>` into the audit stream."""

    at: float
    user: str
    action: str  # login, login_failed, logout, submit, resubmit, view, download, triage, comment, user_add, ...
    target: str = ""  # a submission id, sha256, user name
    detail: dict[str, str] = {}
    remote: str = ""  # the client's address as the web front saw it
