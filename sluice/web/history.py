"""Every summary in the stream, materialised into an embedded SQLite index (WAL, FTS5) beside the web front.

JetStream is the log; this is a view of it. The index remembers the last stream sequence it
applied, so a restarted web front reads only what it missed, and a deleted index file is
rebuilt from the stream (as far back as the stream's retention keeps summaries). Any number of
web fronts each keep their own.

Layout: `subs` (one row per submission: what the list shows and what ranges filter on),
`terms` (an inverted index of exact terms: `sha256:…`, `md5:…`, `tag:family=value`, `svc:pe`,
`heur:pe.3`, `attack:T1059`, `name:…`, `type:…` for the type and each branch above it; each term
stored as a 64-bit BLAKE2b of its text, so the b-tree holds 16-byte keys instead of 80-byte
ones: a third of the disk and far fewer pages touched per insert; a WITHOUT ROWID b-tree, so a
lookup is one seek. Two terms sharing a 64-bit hash would match each other's submissions: at a
billion terms, about one pair in 36,000 histories), `text` (FTS5 over file names, tag values and heuristic names), `failures` (service
errors, for the services page). A summary republished for the same submission (a dispatcher
restarted mid-publish) replaces its row; terms it no longer has may linger, which matches a
republished summary (the same verdict again) exactly in practice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.messages import Summary, walk
from schemas.workspace import Triage
from sluice.web.digests import digests_in
from sluice.web.models import AlertRow, Failure, SubmissionRow
from sluice.web.query import HASH_KINDS, HEX, Query

CACHE_KIB = 64 * 1024  # SQLite page cache per connection (the index's hot pages)
COUNT_CAP = 1000  # a search says "more than 1,000" rather than counting a million matches
RARE = 20_000  # a term with fewer postings than this drives a search (see History._plan)
FAILURES_KEPT = 20  # per service, shown on the services page
SCHEMA = """
CREATE TABLE IF NOT EXISTS subs(
    id INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, score INTEGER NOT NULL, verdict TEXT NOT NULL,
    name TEXT NOT NULL, type TEXT NOT NULL, submitter TEXT NOT NULL, file_count INTEGER NOT NULL,
    errors INTEGER NOT NULL, submitted_at REAL NOT NULL, completed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS subs_completed ON subs(completed_at);
CREATE INDEX IF NOT EXISTS subs_score ON subs(score, completed_at);
CREATE INDEX IF NOT EXISTS subs_submitter ON subs(submitter, completed_at);
CREATE TABLE IF NOT EXISTS terms(term INTEGER NOT NULL, sub INTEGER NOT NULL, PRIMARY KEY(term, sub)) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS text USING fts5(body);
CREATE TABLE IF NOT EXISTS failures(service TEXT NOT NULL, sid TEXT NOT NULL, file TEXT NOT NULL, type TEXT NOT NULL,
    message TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_by_service ON failures(service, at);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digests(sha256 TEXT PRIMARY KEY, md5 TEXT NOT NULL, sha1 TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS undigested(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS triage(sid TEXT PRIMARY KEY, state TEXT NOT NULL, owner TEXT NOT NULL,
    comments INTEGER NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
"""
COLUMNS = "sid, verdict, score, name, type, file_count, errors, completed_at, submitter"


def _kv_hashes(body: str) -> Iterator[str]:
    """md5/sha1 from a KEY_VALUE section (the characterize service lists each file's digests)."""
    try:
        items = json.loads(body)
    except ValueError:
        return
    if not isinstance(items, dict):
        return
    for key in ("md5", "sha1"):
        value = items.get(key)
        if isinstance(value, str) and HEX.match(value) and HASH_KINDS.get(len(value)) == key:
            yield f"{key}:{value.lower()}"


def terms_of(summary: Summary) -> tuple[set[str], str]:
    """The exact terms a summary is found by, and its free text."""
    terms: set[str] = set()
    text: list[str] = []
    for node in walk(summary.files):
        terms.add(f"sha256:{node.sha256}")
        if node.name:
            terms.add(f"name:{node.name.casefold()}")
            text.append(node.name)
        if node.type:  # the type and every branch above it: `type:executable` is one lookup too
            parts = node.type.split("/")
            terms.update(f"type:{'/'.join(parts[:n])}" for n in range(1, len(parts) + 1))
        for error in node.errors:
            terms.add(f"svc:{error.service.casefold()}")
        for view in node.results:
            terms.add(f"svc:{view.service.casefold()}")
            for section in view.sections:
                if section.body_format == "KEY_VALUE":
                    terms.update(_kv_hashes(section.body))
                if section.heuristic:
                    terms.add(f"heur:{view.service.casefold()}.{section.heuristic.heur_id}")
                    terms.update(f"attack:{a.upper()}" for a in section.heuristic.attack_ids)
                    text.append(section.heuristic.name)
    for family, values in summary.tags.items():
        for value in values:
            terms.add(f"tag:{family.casefold()}={value.casefold()}")
            text.append(value)
    return terms, "\n".join(text)


def term_key(term: str) -> int:
    """A term as the index stores it: 64 bits of its BLAKE2b, as a signed SQLite integer."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest(), "big", signed=True)


def row_of(summary: Summary) -> SubmissionRow:
    first = summary.files[0] if summary.files else None
    return SubmissionRow(
        sid=summary.sid, verdict=summary.verdict, score=summary.score, name=first.name if first else "",
        type=first.type if first else "", file_count=summary.file_count or sum(1 for _ in walk(summary.files)),
        errors=summary.errors, completed_at=summary.completed_at, submitter=summary.metadata.get("submitter", ""))


@dataclass
class Page:
    rows: list[SubmissionRow]
    matched: int  # capped at COUNT_CAP + 1 ("more than COUNT_CAP")


class History:
    """The SQLite index. Its methods block (call them through anyio.to_thread); one writer, one reader."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._write = self._connect()
        self._write.executescript(SCHEMA)
        self._read = self._connect()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a power cut loses the last commits, never the file; the stream has them
        db.execute("PRAGMA busy_timeout=10000")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return db

    def close(self) -> None:
        self._write.close()
        self._read.close()

    # -- writing ---------------------------------------------------------------------------
    def last_seq(self) -> int:
        with self._read_lock:
            found = self._read.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return int(found[0]) if found else 0

    def reset(self) -> None:
        """Forget everything indexed (the stream it came from is gone: it is rebuilt from the new one)."""
        with self._write_lock:
            for table in ("subs", "terms", "text", "failures", "meta", "undigested"):  # digests are facts about bytes: kept
                self._write.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    def apply(self, summaries: Iterable[Summary], last_seq: int) -> int:
        """Index a batch and remember the stream sequence it ends at, in one transaction; how many
        of its files were queued to be hashed for md5/sha1 (sluice.web.digests).

        The batch's terms go in sorted, so the b-tree is walked once in order rather than
        jumped about for each summary's (random) hashes."""
        with self._write_lock:
            db = self._write
            db.execute("BEGIN")
            try:
                pairs: list[tuple[int, int]] = []
                queued = 0
                for summary in summaries:
                    sub, terms = self._put(db, summary)
                    added, queued_here = self._digest_terms(db, summary)
                    queued += queued_here
                    pairs += ((term_key(t), sub) for t in terms | added)
                pairs.sort()
                db.executemany("INSERT OR IGNORE INTO terms(term, sub) VALUES (?, ?)", pairs)
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('last_seq', ?)", (last_seq,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return queued

    @staticmethod
    def _digest_terms(db: sqlite3.Connection, summary: Summary) -> tuple[set[str], int]:
        """md5/sha1 terms for every file of the summary whose digests are known (told by the
        summary, or hashed here before); the others queued for hashing. (terms, how many queued)

        Only digests hashed here are stored: those a summary tells are its terms already, and
        storing them too would add a third to the index's size for the rare file seen again
        without them (which is then hashed from the store)."""
        known, unknown = digests_in(summary)
        queued = 0
        for sha, size in unknown.items():
            found = db.execute("SELECT md5, sha1 FROM digests WHERE sha256 = ?", (sha,)).fetchone()
            if found is None:
                queued += db.execute("INSERT OR IGNORE INTO undigested(sha256, size) VALUES (?, ?)", (sha, size)).rowcount
            else:
                known[sha] = found
        return {f"{kind}:{value}" for pair in known.values() for kind, value in zip(("md5", "sha1"), pair) if value}, queued

    def undigested(self, limit: int) -> list[tuple[str, int]]:
        """Files waiting to be hashed for md5/sha1: (sha256, size)."""
        with self._read_lock:
            return self._read.execute("SELECT sha256, size FROM undigested LIMIT ?", (limit,)).fetchall()

    def add_digests(self, digests: Iterable[tuple[str, str, str]]) -> None:
        """Record (sha256, md5, sha1) of hashed files ("" for bytes that could not be had) and give
        every indexed submission with such a file its md5/sha1 terms, in one transaction."""
        with self._write_lock:
            db = self._write
            db.execute("BEGIN")
            try:
                pairs: list[tuple[int, int]] = []
                for sha, md5, sha1 in digests:
                    db.execute("INSERT OR REPLACE INTO digests(sha256, md5, sha1) VALUES (?, ?, ?)", (sha, md5, sha1))
                    db.execute("DELETE FROM undigested WHERE sha256 = ?", (sha,))
                    if not md5:
                        continue
                    subs = [r[0] for r in db.execute("SELECT sub FROM terms WHERE term = ?", (term_key(f"sha256:{sha}"),))]
                    pairs += ((term_key(t), sub) for t in (f"md5:{md5}", f"sha1:{sha1}") for sub in subs)
                pairs.sort()
                db.executemany("INSERT OR IGNORE INTO terms(term, sub) VALUES (?, ?)", pairs)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _put(self, db: sqlite3.Connection, summary: Summary) -> tuple[int, set[str]]:
        """The submission's row, text and failures; (its row id, its terms) for the caller to add."""
        row = row_of(summary)
        found = db.execute("SELECT id FROM subs WHERE sid = ?", (row.sid,)).fetchone()
        values = (row.score, row.verdict, row.name, row.type, row.submitter, row.file_count, row.errors,
                  summary.submitted_at, row.completed_at)
        if found:
            sub = found[0]
            db.execute("UPDATE subs SET score=?, verdict=?, name=?, type=?, submitter=?, file_count=?, errors=?, "
                       "submitted_at=?, completed_at=? WHERE id=?", (*values, sub))
            db.execute("DELETE FROM text WHERE rowid = ?", (sub,))
        else:
            sub = db.execute("INSERT INTO subs(sid, score, verdict, name, type, submitter, file_count, errors, "
                             "submitted_at, completed_at) VALUES (?,?,?,?,?,?,?,?,?,?)", (row.sid, *values)).lastrowid
        terms, text = terms_of(summary)
        db.execute("INSERT INTO text(rowid, body) VALUES (?, ?)", (sub, text))
        for node in walk(summary.files):
            for error in node.errors:
                db.execute("INSERT INTO failures(service, sid, file, type, message, at) VALUES (?,?,?,?,?,?)",
                           (error.service, summary.sid, node.name or node.sha256, error.type.value, error.message[:2000],
                            summary.completed_at))
        return sub, terms

    def optimize(self) -> None:
        """Refresh the planner's statistics (after a large catch-up), and trim old failures."""
        with self._write_lock:
            self._write.execute("DELETE FROM failures WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() "
                                "OVER (PARTITION BY service ORDER BY at DESC) AS n FROM failures) WHERE n > ?)",
                                (FAILURES_KEPT,))
            self._write.execute("PRAGMA optimize=0x10002")

    # -- reading ---------------------------------------------------------------------------
    def count(self) -> int:
        with self._read_lock:
            return self._read.execute("SELECT count(*) FROM subs").fetchone()[0]

    def search(self, query: Query, limit: int = 50, offset: int = 0) -> Page:
        """The page of matches, newest first, and how many match (counted up to COUNT_CAP + 1)."""
        with self._read_lock:
            source, where, args = self._plan(query)
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            columns = ", ".join(f"subs.{c.strip()}" for c in COLUMNS.split(","))
            rows = self._read.execute(f"SELECT {columns} FROM {source} {clause} ORDER BY subs.completed_at DESC, subs.id DESC "
                                      "LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
            matched = self._read.execute(f"SELECT count(*) FROM (SELECT 1 FROM {source} {clause} LIMIT ?)",
                                         (*args, COUNT_CAP + 1)).fetchone()[0]
        return Page([SubmissionRow(*r[:8], submitter=r[8]) for r in rows], matched)

    def _plan(self, query: Query) -> tuple[str, list[str], list[object]]:
        """Where to start: from the rarest term's postings when one is rare (a hash, an unusual
        tag: a few rows, then sorted), else down the completion-time index, checking each row's
        terms with a point lookup until the page is full (common terms match early)."""
        keys = [term_key(t) for t in [*query.terms, *(f"type:{b}" for b in query.type_branches)]]
        sizes = {key: self._read.execute("SELECT count(*) FROM (SELECT 1 FROM terms WHERE term = ? LIMIT ?)",
                                         (key, RARE)).fetchone()[0] for key in keys}
        driving = min(keys, key=sizes.get) if keys and min(sizes.values()) < RARE else None
        where, args = [], []
        # Nothing selective to start from: down the time index, so the first page stops early (left
        # to itself, SQLite would take a score range's index and sort every match first).
        selective = query.words or query.submitter is not None or query.sid is not None
        source = "subs" if selective else "subs INDEXED BY subs_completed"
        if driving is not None:
            source = "terms AS driving CROSS JOIN subs"  # CROSS JOIN: SQLite keeps this loop order
            where.append("driving.term = ? AND subs.id = driving.sub")
            args.append(driving)
        for key in keys:
            if key != driving:
                where.append("EXISTS (SELECT 1 FROM terms WHERE term = ? AND sub = subs.id)")
                args.append(key)
        more_where, more_args = _conditions(query)
        return source, where + more_where, args + more_args

    def apply_triage(self, records: Iterable[Triage]) -> None:
        """Mirror triage records from the KV bucket (the truth), so alerts filter and sort in SQL."""
        with self._write_lock:
            self._write.executemany("INSERT OR REPLACE INTO triage(sid, state, owner, comments, updated_at) VALUES (?,?,?,?,?)",
                                    [(t.sid, t.state.value, t.owner, len(t.comments), t.updated_at) for t in records])

    def alerts(self, threshold: int, state: str | None, owner: str | None, limit: int, offset: int) -> tuple[list[AlertRow], int]:
        """Submissions scoring at least `threshold`, newest first, with their triage (untriaged: new).

        A filter only triaged alerts can pass (a state other than new, an owner) starts from the
        triage table (the few that were triaged); otherwise down the time index, where alerts are
        common enough that the first page fills early."""
        where, args = ["s.score >= ?"], [threshold]
        if state:
            where.append("coalesce(t.state, 'new') = ?")
            args.append(state)
        if owner is not None:
            where.append("coalesce(t.owner, '') = ?")
            args.append(owner)
        triaged_only = (state not in (None, "new")) or bool(owner)
        source = ("triage t CROSS JOIN subs s ON s.sid = t.sid" if triaged_only
                  else "subs s INDEXED BY subs_completed LEFT JOIN triage t ON t.sid = s.sid")
        clause = " AND ".join(where)
        columns = ", ".join(f"s.{c.strip()}" for c in COLUMNS.split(","))
        with self._read_lock:
            rows = self._read.execute(
                f"SELECT {columns}, coalesce(t.state, 'new'), coalesce(t.owner, ''), coalesce(t.comments, 0) "
                f"FROM {source} WHERE {clause} ORDER BY s.completed_at DESC, s.id DESC LIMIT ? OFFSET ?",
                (*args, limit, offset)).fetchall()
            matched = self._read.execute(f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {clause} LIMIT ?)",
                                         (*args, COUNT_CAP + 1)).fetchone()[0]
        return [AlertRow(SubmissionRow(*r[:8], submitter=r[8]), r[9], r[10], r[11]) for r in rows], matched

    def failures(self, service: str) -> list[Failure]:
        with self._read_lock:
            rows = self._read.execute("SELECT sid, file, type, message, at FROM failures WHERE service = ? "
                                      "ORDER BY at DESC LIMIT ?", (service, FAILURES_KEPT)).fetchall()
        return [Failure(*r) for r in rows]


def _fts_phrase(words: list[str]) -> str:
    """Each word as a quoted FTS5 phrase (so nothing typed is FTS syntax), all required."""
    return " AND ".join('"' + w.replace("\x00", " ").replace('"', '""') + '"' for w in words)  # FTS5 ends a string at NUL


def _conditions(q: Query) -> tuple[list[str], list[object]]:
    """Everything but the exact terms (which `_plan` places)."""
    where: list[str] = []
    args: list[object] = []
    if q.words:
        where.append("subs.id IN (SELECT rowid FROM text WHERE text MATCH ?)")
        args.append(_fts_phrase(q.words))
    if q.verdicts:
        where.append(f"subs.verdict IN ({','.join('?' * len(q.verdicts))})")
        args += q.verdicts
    for column, op, value in (("score", ">=", q.min_score), ("score", "<=", q.max_score),
                              ("completed_at", ">=", q.after), ("completed_at", "<", q.before),
                              ("submitter", "=", q.submitter), ("sid", "=", q.sid)):
        if value is not None:
            where.append(f"subs.{column} {op} ?")
            args.append(value)
    return where, args


@contextlib.contextmanager
def open_history(path: Path | None) -> Iterator[History]:
    """The index at `path` (kept), or in a temporary directory removed afterwards (rebuilt from the stream each start)."""
    with contextlib.ExitStack() as stack:
        if path is None:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sluice-web-"))) / "history.sqlite"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        history = History(path)
        stack.callback(history.close)
        yield history
