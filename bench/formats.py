#!/usr/bin/env python3
"""The per-format table of issue 14: for each format's specimens (built now by tests/formats.py),
were they typed as expected, did something come out (children, URI samples), and what; then the
same counts per expected type (specimens tried, typed, containers, opened).

    .venv/bin/python bench/formats.py [--markdown]

Every built-in service that accepts the specimen's type runs once on it (no NATS), as the mesh
would run it at one level; "opened" counts what came out of that level. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from formats import specimens  # noqa: E402
from dispatcher.identify import identify  # noqa: E402
from schemas.taxonomy import matching_types  # noqa: E402
from services.sdk.harness import run_service_once  # noqa: E402
from services.sdk.loader import builtin_services, load_service  # noqa: E402

SHOWN_TAGS = ("file.shortcut.command_line", "network.static.uri", "info.password", "network.email.subject")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()
    services = {name: load_service(name) for name in builtin_services()}
    accepts = {name: set(matching_types(s.manifest.accepts, s.manifest.rejects)) for name, s in services.items()}
    rows = [("format", "typed", "opened", "services", "yields")]
    per_type: dict[str, list[int]] = {}  # expected type -> [tried, typed, containers, opened]
    tried = typed = containers = opened = 0
    for specimen in specimens():
        tried += 1
        got = identify(specimen.data)
        typed += got == specimen.expected
        counts = per_type.setdefault(specimen.expected, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += got == specimen.expected
        children, related, tags, fired = [], [], [], []
        for name, service in services.items():
            if got not in accepts[name]:
                continue
            run = run_service_once(service, specimen.data, file_type=got, name=specimen.name)
            children += [e.name for e in run.extracted]
            related += [r.ref.name for r in run.related]
            tags += [f"{t.name.split('.')[-1]}={t.value}" for s in run.result.sections for t in s.tags if t.name in SHOWN_TAGS]
            fired += [f"{name}" for _ in [0] if run.result.sections]
        came_out = len(children) + len(related)
        if specimen.container:
            containers += 1
            opened += came_out > 0
            counts[2] += 1
            counts[3] += came_out > 0
        yields = ", ".join([*children[:4], *related[:2], *dict.fromkeys(tags[:3])]) or "-"
        rows.append((specimen.format, got if got == specimen.expected else f"{got} (expected {specimen.expected})",
                     f"{len(children)} files, {len(related)} URIs" if came_out else ("-" if not specimen.container else "NOTHING"),
                     " ".join(dict.fromkeys(fired)), yields[:160]))
    show(rows, args.markdown)
    print(f"\n{tried} specimens: {typed} typed as expected; {opened} of {containers} containers/launchers gave something out\n")
    show([("type", "specimens tried", "typed", "containers", "opened")]
         + [(name, *map(str, counts)) for name, counts in sorted(per_type.items())], args.markdown)


def show(rows: list[tuple[str, ...]], markdown: bool) -> None:
    """`rows` (the first is the header) as a Markdown table or aligned columns."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        if markdown:
            print("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
            if index == 0:
                print("|" + "---|" * len(row))
        else:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
