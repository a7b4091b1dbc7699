"""Accounts, API keys and sessions, kept in NATS KV so every web front and `sluice user` share them.

Passwords are argon2id hashes (argon2-cffi, its default parameters: memory-hard, so a stolen
bucket is expensive to crack); verifying one costs tens of milliseconds and runs in a worker
thread. API keys and session tokens are 256-bit random tokens, so a SHA-256 of them is enough
to store (nothing to brute-force) and costs nothing per request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time

import anyio
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from nats.js.errors import KeyNotFoundError
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from bus.kv import kv_keys
from bus.codec import BadMessage, decode, encode
from schemas.workspace import USERNAME, ApiKey, Role, Session, User
from sluice.web.stores import SESSION_TTL

KEY_PREFIX = "slk_"  # API keys say what they are (secret scanners and people recognise them)
KEY_ID = re.compile(r"^[a-f0-9]{12}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about accounts that cannot be met (unknown user, bad name, weak password)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(name: str) -> str:
    if not re.match(USERNAME, name):
        raise AccountError(f"{name!r}: a user name is 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    return name


class Accounts:
    def __init__(self, js: JetStreamContext, bucket: str, accounts: KeyValue, sessions: KeyValue) -> None:
        self.js = js
        self.bucket = bucket
        self.kv = accounts
        self.sessions = sessions

    # -- users -----------------------------------------------------------------------------
    async def _get(self, key: str, cls: type):
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        try:
            return decode(entry.value, cls)
        except BadMessage:
            return None

    async def user(self, name: str) -> User | None:
        if not re.match(USERNAME, name):
            return None
        return await self._get(f"user.{name}", User)

    async def add_user(self, name: str, role: Role, password: str = "", oidc_subject: str = "", replace: bool = False) -> User:
        check_username(name)
        if password and len(password) < MIN_PASSWORD:
            raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
        if not replace and await self.user(name) is not None:
            raise AccountError(f"user {name} exists (remove it first, or pass --replace)")
        hashed = await anyio.to_thread.run_sync(_hasher.hash, password) if password else ""
        user = User(name, Role(role), hashed, time.time(), oidc_subject)
        await self.kv.put(f"user.{name}", encode(user))
        return user

    async def remove_user(self, name: str) -> None:
        if await self.user(name) is None:
            raise AccountError(f"no user {name}")
        for key in await self.keys(name):
            await self.revoke_key(key.key_id)
        await self.kv.delete(f"user.{name}")

    async def users(self) -> list[User]:
        found = [await self.user(key.removeprefix("user.")) for key in await self._keys("user.")]
        return [user for user in found if user is not None]

    async def _keys(self, prefix: str) -> list[str]:
        return [k for k in await kv_keys(self.js, self.bucket) if k.startswith(prefix)]  # deleted ones read as None

    async def has_users(self) -> bool:
        return bool(await self._keys("user."))

    async def check_password(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs; as slow for an unknown name as for a wrong password."""
        user = await self.user(name)
        stored = user.password_hash if user and user.password_hash else _dummy_hash()
        try:
            await anyio.to_thread.run_sync(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return user if user and user.password_hash else None

    async def user_by_subject(self, subject: str) -> User | None:
        for user in await self.users():
            if user.oidc_subject and hmac.compare_digest(user.oidc_subject, subject):
                return user
        return None

    # -- API keys --------------------------------------------------------------------------
    async def create_key(self, user: str, expires_in: float, label: str = "") -> tuple[ApiKey, str]:
        """A new key for `user`: (its record, the token). The token is not kept anywhere."""
        if await self.user(user) is None:
            raise AccountError(f"no user {user}")
        key_id = secrets.token_hex(6)
        token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        key = ApiKey(key_id, user, digest(token), now, now + expires_in if expires_in > 0 else 0.0, label)
        await self.kv.put(f"key.{key_id}", encode(key))
        return key, token

    async def keys(self, user: str | None = None) -> list[ApiKey]:
        found = [await self._get(k, ApiKey) for k in await self._keys("key.")]
        return [k for k in found if k is not None and (user is None or k.user == user)]

    async def revoke_key(self, key_id: str) -> ApiKey:
        key = await self._get(f"key.{key_id}", ApiKey) if KEY_ID.match(key_id) else None
        if key is None:
            raise AccountError(f"no API key {key_id}")
        key = msgspec.structs.replace(key, revoked_at=key.revoked_at or time.time())
        await self.kv.put(f"key.{key_id}", encode(key))
        return key

    async def check_key(self, token: str) -> User | None:
        """The key's user, if the token is a live (known, unrevoked, unexpired) key of an existing user."""
        if not token.startswith(KEY_PREFIX):
            return None
        key_id = token[len(KEY_PREFIX):].partition("_")[0]
        key = await self._get(f"key.{key_id}", ApiKey) if KEY_ID.match(key_id) else None
        if key is None or not hmac.compare_digest(key.digest, digest(token)):
            return None
        if key.revoked_at or (key.expires_at and key.expires_at < time.time()):
            return None
        return await self.user(key.user)

    # -- sessions --------------------------------------------------------------------------
    async def open_session(self, user: User, via: str = "password") -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(user.name, user.role, secrets.token_urlsafe(24), now, now + SESSION_TTL, via)
        await self.sessions.put(digest(token), encode(session))
        return token, session

    async def session(self, token: str) -> Session | None:
        if not token or len(token) > 100:
            return None
        try:
            entry = await self.sessions.get(digest(token))
        except KeyNotFoundError:
            return None
        try:
            session = decode(entry.value, Session) if entry.value else None
        except BadMessage:
            return None
        if session is None or session.expires_at < time.time():
            return None
        user = await self.user(session.user)  # a removed or re-roled user loses the session's old rights at once
        if user is None:
            return None
        return msgspec.structs.replace(session, role=user.role)

    async def close_session(self, token: str) -> None:
        await self.sessions.delete(digest(token))
