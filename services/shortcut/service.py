"""Shortcut: what a .lnk, .url, .iqy, .settingcontent-ms or .jnlp opens when double-clicked.

Targets and command lines become tags (and web targets URI samples, analysed in turn by the
uri service); heuristics say when a shortcut runs an interpreter or LOLBin, hides or encodes
its arguments, reaches a remote share or URL, or wears a document's icon.
"""

from __future__ import annotations

from services.sdk import BODY_FORMAT, MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase
from services.shortcut import launchers, lnk
from services.shortcut.signals import decoy_icon, lolbin, obfuscation, remote

WEB = ("http://", "https://", "ftp://")


class Shortcut(ServiceBase):
    def start(self) -> None:
        self.lolbins = {name.lower() for name in self.config.get("lolbins", [])}
        self.long_arguments = int(self.config.get("long_arguments", 250))

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        if request.file_type == "shortcut/windows":
            self._lnk(request, result)
        else:
            self._launcher(request, result)

    def _lnk(self, request: Request, result: Result) -> None:
        try:
            link = lnk.parse(request.file_contents)
        except Exception as exc:  # noqa: BLE001 - LnkParse3 on a hostile file raises anything
            result.add_section(ResultSection("Unreadable shortcut", f"{type(exc).__name__}: {exc}", heuristic=6))
            return
        facts = {"target": link.target, "arguments": link.arguments, "working directory": link.working_dir,
                 "icon": link.icon, "description": link.description, "machine id": link.machine_id,
                 "tracker MAC": link.tracker_mac, "created": link.created}
        section = ResultSection("Shortcut", {k: v for k, v in facts.items() if v}, BODY_FORMAT.KEY_VALUE, heuristic=1)
        if link.command_line:
            section.add_tag("file.shortcut.command_line", link.command_line[:4096])
        for name, value in (("file.shortcut.icon_location", link.icon), ("file.shortcut.machine_id", link.machine_id),
                            ("file.shortcut.tracker_mac", link.tracker_mac)):
            if value:
                section.add_tag(name, value)
        result.add_section(section)
        runs = lolbin(link.target, link.arguments, self.lolbins)
        if runs:
            result.add_section(ResultSection("Runs a command interpreter or LOLBin", f"{runs}: {link.command_line[:1000]}",
                                             heuristic=2))
        tricks = obfuscation(link.arguments, self.long_arguments)
        if tricks:
            sub = ResultSection("Long or obfuscated arguments", heuristic=3)
            sub.add_lines(tricks)
            result.add_section(sub)
        if link.appended:
            payload = request.file_contents[-link.appended:]
            section = ResultSection("Data appended to the shortcut", f"{link.appended:,} bytes after its last block", heuristic=7)
            result.add_section(section)
            try:
                request.add_extracted(payload, "appended-data.bin", "bytes appended after the shortcut's terminal block")
            except MaxExtractedExceeded:
                section.add_line(f"(not extracted: the file reached its limit of {request.max_extracted})")
        if decoy_icon(link.icon, link.target, self.lolbins):
            result.add_section(ResultSection("Document icon on a program", f"icon {link.icon} on {link.target}", heuristic=5))
        self._targets(request, result, [link.target, *link.arguments.split()])

    def _launcher(self, request: Request, result: Result) -> None:
        text = request.file_contents.decode("utf-8-sig", "replace")
        if "\x00" in text[:200]:
            text = request.file_contents.decode("utf-16", "replace")
        found = launchers.read(request.file_type, text)
        section = ResultSection(found.kind, heuristic=1)
        section.add_lines(found.targets or ["(no target found)"])
        if found.icon:
            section.add_line(f"icon: {found.icon}")
            section.add_tag("file.shortcut.icon_location", found.icon[:4096])
        result.add_section(section)
        if request.file_type == "shortcut/settingcontent" and found.targets:
            for command in found.targets:
                section.add_tag("file.shortcut.command_line", command[:4096])
            result.add_section(ResultSection("Settings shortcut runs a command", found.targets[0][:1000], heuristic=2))
        self._targets(request, result, found.targets)

    def _targets(self, request: Request, result: Result, candidates: list[str]) -> None:
        """Web and UNC targets: tagged, web ones related as URI samples; a heuristic for remote ones."""
        remote_targets = [c.strip('"') for c in candidates if c and remote(c.strip('"'))]
        if not remote_targets:
            return
        section = ResultSection("Remote targets", heuristic=4)
        for target in dict.fromkeys(remote_targets):
            section.add_line(target[:1000])
            if target.lower().startswith(WEB):
                section.add_tag("network.static.uri", target)
                try:
                    request.add_related("uri", target, description="opened by the shortcut")
                except MaxExtractedExceeded:
                    section.add_line(f"(not related as a URI sample: the file reached its limit of {request.max_extracted})")
            elif target.startswith("\\\\"):
                section.add_tag("network.static.unc_path", target)
        result.add_section(section)
