"""Detection and false-positive rates of the built-in services on the labelled corpus.

    python bench/detection.py            # the whole corpus through a real one-box mesh
    python bench/detection.py --json     # the same figures as one JSON object
    python bench/detection.py --misses   # also list each miss and false positive with its heuristics

Every specimen of tests/corpus.py is submitted to a one-box mesh (an embedded nats-server, the
dispatcher and every built-in service, as `sluice up` runs them). A malicious specimen is detected
when its submission scores 500 or more (the alert threshold); a benign one is a false positive
when it does. Figures are printed per format (all specimens) and overall for the calibration set
(the specimens the scores were tuned on), with and without the specimens whose format another
service (e-mail, HTML forms, LNK) is meant to cover, and for the held-out set, written after
calibration and never used to tune anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/detection.py` from anywhere
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from services.sdk.testing import mesh  # noqa: E402
from tests.corpus import BENIGN, MALICIOUS, SPECIMENS, Outcome, buildable, scan_corpus  # noqa: E402


def rates(outcomes: list[Outcome]) -> dict[str, float | int]:
    bad = [o for o in outcomes if o.specimen.label == MALICIOUS]
    good = [o for o in outcomes if o.specimen.label == BENIGN]
    detected = sum(o.flagged for o in bad)
    false_pos = sum(o.flagged for o in good)
    return {"malicious": len(bad), "detected": detected, "detection": detected / len(bad) if bad else float("nan"),
            "benign": len(good), "false_positives": false_pos, "fp_rate": false_pos / len(good) if good else float("nan")}


def report(outcomes: list[Outcome]) -> dict:
    by_format: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_format[outcome.specimen.format].append(outcome)
    calibration = [o for o in outcomes if not o.specimen.held_out]
    own = [o for o in calibration if not o.specimen.needs]
    return {
        "per_format": {fmt: rates(items) for fmt, items in sorted(by_format.items())},
        "overall_builtin_formats": rates(own),
        "overall_all": rates(calibration),
        "held_out": rates([o for o in outcomes if o.specimen.held_out]),
        "misses": [(o.specimen.name, o.specimen.format, o.score, o.why) for o in outcomes if o.specimen.label == MALICIOUS and not o.flagged],
        "false_positives": [(o.specimen.name, o.specimen.format, o.score, o.why) for o in outcomes if o.specimen.label == BENIGN and o.flagged],
    }


def _pct(value: float) -> str:
    return "  n/a" if value != value else f"{100 * value:5.1f} %"


def print_table(figures: dict, skipped: list, seconds: float, misses: bool) -> None:
    print(f"{'format':<16}{'malicious':>10}{'detected':>10}{'rate':>9}   {'benign':>7}{'FP':>5}{'FP rate':>9}")
    for fmt, r in figures["per_format"].items():
        print(f"{fmt:<16}{r['malicious']:>10}{r['detected']:>10}{_pct(r['detection']):>9}   {r['benign']:>7}{r['false_positives']:>5}{_pct(r['fp_rate']):>9}")
    for title, key in (("calibration set, formats built-in services cover", "overall_builtin_formats"),
                       ("calibration set, with e-mail/HTML-form/LNK specimens", "overall_all"),
                       ("held-out set (not used to tune scores)", "held_out")):
        r = figures[key]
        print(f"{title}: detection {r['detected']}/{r['malicious']} = {_pct(r['detection']).strip()}, "
              f"false positives {r['false_positives']}/{r['benign']} = {_pct(r['fp_rate']).strip()}")
    for specimen, reason in skipped:
        print(f"skipped {specimen.name}: {reason}")
    if misses:
        for name, fmt, score, why in figures["misses"]:
            print(f"miss  {fmt:<14} {score:>5}  {name[:50]}  [{why}]")
        for name, fmt, score, why in figures["false_positives"]:
            print(f"FP    {fmt:<14} {score:>5}  {name[:50]}  [{why}]")
    print(f"{seconds:.1f} s for the corpus")


async def main(args: argparse.Namespace) -> None:
    specimens, skipped = buildable(SPECIMENS)
    done = 0

    def progress(_summary) -> None:
        nonlocal done
        done += 1
        if not args.json:
            print(f"\r{done}/{len(specimens)} verdicts", end="", file=sys.stderr, flush=True)

    started = time.monotonic()
    async with mesh(None) as box:
        outcomes = await scan_corpus(box.client, specimens, timeout=args.timeout, on_done=progress)
    seconds = time.monotonic() - started
    if not args.json:
        print(file=sys.stderr)
    figures = report(outcomes)
    if args.json:
        figures["skipped"] = [(s.name, reason) for s, reason in skipped]
        figures["seconds"] = round(seconds, 1)
        print(json.dumps(figures))
    else:
        print_table(figures, skipped, seconds, args.misses)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--misses", action="store_true", help="list misses and false positives with their heuristics")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all verdicts")
    anyio.run(main, parser.parse_args())
