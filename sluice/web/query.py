"""The search language an analyst types, parsed into conditions (no SQL here: `history` builds it).

    d41d8cd98f00b204e9800998ecf8427e          a bare md5, sha1 or sha256: that hash, any file of any tree
    tag:network.static.domain=evil.example    a tag, exactly (values case-insensitive)
    name:invoice.pdf.exe  type:executable     a file name; a type or a branch of the type taxonomy
    verdict:malicious  score>=500  score:300..699
    after:2026-01-31  before:2026-02-01       completion dates (UTC days; `after` includes the day)
    service:pe  heuristic:pe.3  attack:T1059  submitter:alice  sid:...
    powershell "evil example"                 words anywhere in file names, tag values and heuristic names

Every condition must hold (AND). A value with spaces goes in double quotes: name:"my file.doc".
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone

HEX = re.compile(r"^[0-9a-fA-F]+$")
HASH_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}
VERDICTS = ("malicious", "highly_suspicious", "suspicious", "info", "safe")
SCORE = re.compile(r"^score(>=|<=|>|<|:|=)(-?\d+)(?:\.\.(-?\d+))?$")
DAY = 86400.0
SCORE_BOUND = 10**9  # far past any real score; keeps numbers inside SQLite's 64-bit integers


class QueryError(ValueError):
    """The query cannot be understood; the message says which part and why."""


@dataclass
class Query:
    terms: list[str] = field(default_factory=list)       # exact index terms, e.g. "md5:…", "tag:family=value"
    type_branches: list[str] = field(default_factory=list)  # "type:executable" also matches "type:executable/…"
    words: list[str] = field(default_factory=list)       # free text (phrases)
    verdicts: list[str] = field(default_factory=list)
    min_score: int | None = None
    max_score: int | None = None
    after: float | None = None
    before: float | None = None
    submitter: str | None = None
    sid: str | None = None

    def narrow_score(self, low: int | None, high: int | None) -> None:
        if low is not None:
            self.min_score = low if self.min_score is None else max(self.min_score, low)
        if high is not None:
            self.max_score = high if self.max_score is None else min(self.max_score, high)


def _day(value: str, key: str) -> float:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise QueryError(f"{key}:{value}: a date is YYYY-MM-DD") from None


def _hash_term(value: str, key: str = "hash") -> str:
    kind = HASH_KINDS.get(len(value))
    if not HEX.match(value) or kind is None or (key != "hash" and key != kind):
        raise QueryError(f"{key}:{value}: expected {'an md5, sha1 or sha256' if key == 'hash' else 'a ' + key} in hex")
    return f"{kind}:{value.lower()}"


def _score(token: str, query: Query) -> None:
    m = SCORE.match(token)
    if not m:
        raise QueryError(f"{token}: a score is score>=N, score<=N, score>N, score<N, score:N or score:LOW..HIGH")
    op, n, high = m[1], int(m[2]), m[3]
    if abs(n) > SCORE_BOUND or (high is not None and abs(int(high)) > SCORE_BOUND):
        raise QueryError(f"{token}: a score between -{SCORE_BOUND} and {SCORE_BOUND}")
    if high is not None:
        if op != ":":
            raise QueryError(f"{token}: a range is score:LOW..HIGH")
        query.narrow_score(n, int(high))
    elif op in (":", "="):
        query.narrow_score(n, n)
    else:
        query.narrow_score(*{">=": (n, None), ">": (n + 1, None), "<=": (None, n), "<": (None, n - 1)}[op])


def _keyed(key: str, value: str, query: Query) -> None:
    if not value:
        raise QueryError(f"{key}: needs a value after the colon")
    lowered = value.casefold()
    if key in ("hash", "md5", "sha1", "sha256"):
        query.terms.append(_hash_term(value, key))
    elif key == "tag":
        family, sep, tag_value = value.partition("=")
        if sep:
            query.terms.append(f"tag:{family.casefold()}={tag_value.casefold()}")
        else:
            query.words.append(value)  # a value without its family: found as text
    elif key == "name":
        query.terms.append(f"name:{lowered}")
    elif key == "type":
        query.type_branches.append(lowered.rstrip("/"))
    elif key == "verdict":
        if lowered not in VERDICTS:
            raise QueryError(f"verdict:{value}: one of {', '.join(VERDICTS)}")
        query.verdicts.append(lowered)
    elif key in ("service", "svc"):
        query.terms.append(f"svc:{lowered}")
    elif key in ("heuristic", "heur"):
        query.terms.append(f"heur:{lowered}")
    elif key == "attack":
        query.terms.append(f"attack:{value.upper()}")
    elif key in ("submitter", "user"):
        query.submitter = value
    elif key == "sid":
        query.sid = value
    elif key == "after":
        query.after = _day(value, key)
    elif key == "before":
        query.before = _day(value, key) + DAY
    else:
        raise QueryError(f"{key}: unknown field; use hash md5 sha1 sha256 tag name type verdict score service "
                         "heuristic attack submitter sid after before, or plain words")


def parse(text: str) -> Query:
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise QueryError(f"{exc} (a double quote is not closed?)") from None
    query = Query()
    for token in tokens:
        if re.match(r"^score[<>:=]", token):
            _score(token, query)
            continue
        key, sep, value = token.partition(":")
        if sep and re.match(r"^[a-z0-9]+$", key):
            _keyed(key, value, query)
        elif HEX.match(token) and len(token) in HASH_KINDS:
            query.terms.append(_hash_term(token))
        else:
            query.words.append(token)
    return query
