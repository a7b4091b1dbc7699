"""The usual phishing signals of a `Mail`, each a small function so each can be tested alone."""

from __future__ import annotations

import re

from services.email.message import Mail

FAILED = {"fail", "softfail", "permerror", "temperror"}
_ADDRESS_IN_NAME = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_DOMAIN_IN_NAME = re.compile(r"\b((?:[a-z0-9-]+\.)+(?:com|net|org|gov|edu|io|co|uk|de|fr|info|biz))\b", re.I)
# "password: X", "pwd = X", "Passwort: X", "le mot de passe est X", "contraseña: X", "пароль: X"
_PASSWORD = re.compile(
    r"(?:password|passwort|passwd|pwd|pass ?code|kennwort|mot de passe|contrase(?:ñ|n)a|senha|пароль|密码)"
    r"(?:\s+(?:is|est|ist|es|é))?\s*[:=\-–]?\s*[\"'“«]?([^\s\"'”»<>,;]{3,64})",
    re.I,
)
_NOT_PASSWORDS = {"is", "for", "the", "and", "your", "reset", "below", "attached", "protected", "required", "field"}


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower().strip(" >.") if "@" in address else ""


def auth_failures(mail: Mail) -> dict[str, str]:
    return {method: verdict for method, verdict in mail.auth_results.items() if verdict in FAILED}


def display_name_spoof(mail: Mail) -> str | None:
    """The domain a From display name shows when it is not the sending address's own."""
    name, address = mail.sender
    sender_domain = domain_of(address)
    shown = _ADDRESS_IN_NAME.search(name) or _DOMAIN_IN_NAME.search(name)
    if not shown or not sender_domain:
        return None
    shown_domain = shown.group(1).lower()
    if shown_domain == sender_domain or sender_domain.endswith("." + shown_domain):
        return None
    return shown_domain


def reply_elsewhere(mail: Mail) -> list[str]:
    """Reply-To addresses in another domain than From (replies go to someone else)."""
    sender_domain = domain_of(mail.sender[1])
    return [a for a in mail.reply_to if sender_domain and domain_of(a) and domain_of(a) != sender_domain]


def envelope_elsewhere(mail: Mail) -> str | None:
    """The Return-Path (envelope sender) domain when it is not the From domain (mailing services do
    this too, so it is a weak signal on its own)."""
    sender, envelope = domain_of(mail.sender[1]), domain_of(mail.return_path)
    if sender and envelope and envelope != sender and not envelope.endswith("." + sender):
        return envelope
    return None


def risky_attachments(mail: Mail, extensions: set[str]) -> list[str]:
    """Attachment names whose (last) extension is a launcher, disk image, script or executable,
    or that hide one behind a decoy extension (`invoice.pdf.exe`, `scan.pdf   .lnk`)."""
    risky = []
    for attachment in mail.attachments:
        parts = attachment.name.lower().rsplit(".", 2)
        if len(parts) >= 2 and parts[-1].strip() in extensions:
            risky.append(attachment.name)
    return risky


def passwords_in_text(*texts: str) -> list[str]:
    """Candidate passwords given in the body ("the password is: Inv2026"), in order, each once."""
    found: list[str] = []
    for text in texts:
        for candidate in _PASSWORD.findall(text):
            candidate = candidate.strip(".:!")
            if len(candidate) >= 3 and candidate.lower() not in _NOT_PASSWORDS and candidate not in found:
                found.append(candidate)
    return found[:20]
