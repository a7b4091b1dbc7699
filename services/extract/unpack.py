"""One archive's unpacking: members admitted, read under the budget, kept as children.

The same rules apply to every format: entry count, hostile names, links, encryption, then
the size and ratio budget while the bytes come out, then the per-file child limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from services.extract.findings import Findings
from services.extract.formats import Kind, Member, SharedStream, corrupt_errors
from services.extract.libarchive_formats import is_encryption_error
from services.extract.passwords import Keyring
from services.extract.safety import Budget, Caps, LimitHit, name_problems, safe_basename
from services.extract.sevenzip import Locked, SevenZip
from services.sdk import Request
from services.sdk.request import MaxExtractedExceeded


class Unpack:
    """The findings and the listing of kept children, filled in as the members go by.

    Formats that hand out streams (zip, tar, single streams) are read member by member;
    7z pushes its bytes, so its members are admitted first and decompressed in one pass.
    """

    def __init__(self, request: Request, caps: Caps) -> None:
        self.request = request
        self.caps = caps
        self.findings = Findings()
        self.listing: list[dict[str, object]] = []

    def stream(self, stream: Iterator[Member], shared: SharedStream | None) -> None:
        """Read and keep each admitted member; return early when a limit ends the whole archive."""
        budget = Budget(self.caps, shared.packed, shared.consumed) if shared else Budget(self.caps)
        for member, safe in self._admitted(stream, renamed=True):
            content, stop = self._read(member, budget)
            if stop:
                return
            if content is not None and not self._keep(member.name, safe, content):
                return

    def seven_zip(self, data: bytes, keyring: Keyring) -> None:
        """Admit the listed members, decompress them in one pass, keep what completed.

        py7zr refuses hostile names itself, so those members are reported, not renamed.
        The ratio is the whole archive's: solid 7z members have no compressed size of their own.
        """
        try:
            archive = SevenZip(data, keyring)
        except Locked as locked:
            self.findings.add("encrypted", f"archive: {locked}")
            return
        with archive:
            targets = [member.name for member, _ in self._admitted(archive.members, renamed=False)]
            try:
                outcome = archive.extract(targets, Budget(self.caps, len(data)))
            except Locked as locked:
                for name in targets:
                    self.findings.add("encrypted", f"{name!r}: {locked}")
                return
        for name, hit in outcome.limited:
            self.findings.add(hit.kind, f"{name!r}: {hit}")
        if outcome.error is not None:
            self.findings.add("corrupt", f"7zip: {type(outcome.error).__name__}: {outcome.error}")
        for index, (name, content) in enumerate(outcome.done):
            if not self._keep(name, safe_basename(name, f"member-{index}"), content):
                return

    def _admitted(self, stream: Iterable[Member], renamed: bool) -> Iterator[tuple[Member, str]]:
        """The file members to read, each with its child name; the rest become findings.

        `renamed`: a hostile name is extracted under its safe basename (else it is refused).
        """
        cap = self.caps.entries
        findings = self.findings
        for index, member in enumerate(stream):
            if index >= cap:
                findings.add("entries", f"more than {cap} entries; the rest were not looked at")
                return
            label = repr(member.name)
            safe = safe_basename(member.name, f"member-{index}")
            problems = name_problems(member.name)
            if problems:
                fate = f"extracted as {safe!r}" if renamed else "not extracted"
                findings.add("traversal", f"{label}: {', '.join(problems)} ({fate})")
            if member.kind is Kind.DIR:
                continue
            if member.kind in (Kind.LINK, Kind.SPECIAL):
                findings.add("link", f"{label}: {member.detail or member.kind.value}")
                continue
            if member.kind is Kind.OVERLAPPING:
                findings.add("ratio", f"{label}: {member.detail}")
                continue
            if member.kind is Kind.ENCRYPTED:
                findings.add("encrypted", f"{label}: {member.detail}" if member.detail else label)
                continue
            if problems and not renamed:
                continue
            yield member, safe

    def _keep(self, name: str, safe: str, content: bytes) -> bool:
        """Hand the member over as a child; False once the per-file child limit is reached."""
        request = self.request
        if len(content) == request.file_size and content == request.file_contents:
            self.findings.add("ratio", f"{name!r}: the archive itself (a quine: unpacking it again never ends)")
            return True
        try:
            added = request.add_extracted(content, safe, f"member {name!r} of the archive")
        except MaxExtractedExceeded:
            limit = request.max_extracted
            self.findings.add("entries", f"stopped at {limit} extracted files (the per-file limit)")
            return False
        if added:
            self.listing.append({"name": safe, "member": name, "size": len(content)})
        else:
            self.findings.add("empty", f"{name!r}: 0 bytes, nothing to analyse")
        return True

    def _read(self, member: Member, budget: Budget) -> tuple[bytes | None, bool]:
        """(the member's bytes or None, whether to stop reading the archive); failures are recorded."""
        label = repr(member.name)
        try:
            assert member.open is not None
            with member.open() as fh:
                return budget.read(fh, member.packed_size), False
        except LimitHit as hit:
            # In a shared stream (tar, .tar.gz) the next member lies past the rest of this one,
            # and getting there means decompressing it all, uncounted: a 2 GiB member would run
            # past the service's timeout. So a member limit there ends the archive too.
            stop = hit.stop or not member.independent
            rest = "; the rest of the stream was not read" if stop and not hit.stop else ""
            self.findings.add(hit.kind, f"{label}: {hit}{rest}")
            return None, stop
        except corrupt_errors() as exc:
            # Zip members are independent; in a tar or a single stream the rest is unreachable.
            kind = "encrypted" if is_encryption_error(exc) else "corrupt"
            self.findings.add(kind, f"{label}: {type(exc).__name__}: {exc}")
            return None, not member.independent
