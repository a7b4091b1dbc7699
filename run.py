#!/usr/bin/env python3
"""Bootstrap: the only thing a fresh machine needs is Python 3.11+.

    python3 run.py test [pytest args]     run the test suite
    python3 run.py <sluice args>          run the sluice CLI, e.g. `python3 run.py scan samples/`

On first use this creates ``.venv`` next to this file and installs the project (editable, with the
``test`` and ``fast`` extras). The install is repeated only when ``pyproject.toml`` is newer than
the stamp file inside ``.venv``, so every later run starts at once. Stdlib only, on purpose: this
runs before any dependency exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".sluice-installed"
PYPROJECT = ROOT / "pyproject.toml"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
EXE = ".exe" if os.name == "nt" else ""
PYTHON = BIN / f"python{EXE}"


def say(msg: str) -> None:
    print(f"run.py: {msg}", file=sys.stderr, flush=True)


def fail(msg: str, output: str = "") -> None:
    if output:
        sys.stderr.write(output if output.endswith("\n") else output + "\n")
    say(msg)
    sys.exit(1)


def ensure_venv() -> None:
    if not PYTHON.exists():
        # Missing, or left behind by an interpreter that is gone: (re)create it.
        say("setting up .venv (first run only)…")
        try:
            venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
        except (OSError, subprocess.CalledProcessError) as e:
            fail(
                f"could not create {VENV} ({e}); on Debian/Ubuntu install the python3-venv package"
            )
    if STAMP.exists() and STAMP.stat().st_mtime >= PYPROJECT.stat().st_mtime:
        return
    say("installing sluice and its dependencies into .venv…")
    proc = subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--editable", f"{ROOT}[test,fast]"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        fail(f"pip install failed (exit {proc.returncode}); output above", proc.stdout)
    STAMP.write_text("installed from pyproject.toml; delete this file to force a reinstall\n")
    say("ready.")


def run(argv: list[str]) -> None:
    """Replace this process (so signals and exit codes pass straight through)."""
    if os.name == "nt":  # no real exec on Windows
        sys.exit(subprocess.call(argv))
    os.execv(argv[0], argv)


def main() -> None:
    if sys.version_info < (3, 11):
        fail(f"Python 3.11+ is required; this is {sys.version.split()[0]}")
    args = sys.argv[1:]
    ensure_venv()
    if args[:1] == ["test"]:
        run([str(PYTHON), "-m", "pytest", *args[1:]])
    sluice = BIN / f"sluice{EXE}"
    if not sluice.exists():
        fail(f"{sluice} is missing; delete {STAMP} and run again to reinstall")
    run([str(sluice), *args])


if __name__ == "__main__":
    main()
