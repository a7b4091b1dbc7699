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
import shutil
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
CHROMIUM = Path("/usr/bin/chromium")  # the browser tests drive Debian's chromium, never a downloaded one
CHROMIUM_FAILED = VENV / ".chromium-install-failed"


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


def ensure_chromium() -> None:
    """Install Debian's chromium for the browser tests, once, where that is possible (root with apt-get).

    Elsewhere, or if the install fails (the reason is kept in CHROMIUM_FAILED, so it is not tried
    on every run), the browser tests skip and say why. SLUICE_NO_BROWSER=1 skips the install
    (the bare-machine quick-start test runs a short selection without browser tests).
    """
    if CHROMIUM.exists() or CHROMIUM_FAILED.exists() or os.name == "nt" or os.environ.get("SLUICE_NO_BROWSER"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    say("installing Debian's chromium for the browser tests (apt-get, once)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "env": env}
    subprocess.run(["apt-get", "update", "-qq"], **quiet)  # a fresh machine has no package lists yet
    step = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    proc = subprocess.run(step, **quiet)
    if proc.returncode != 0:
        CHROMIUM_FAILED.write_text(f"{' '.join(step)} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}")
        say(f"could not install chromium (apt-get exit {proc.returncode}); the browser tests will skip. "
            f"Details in {CHROMIUM_FAILED}; delete it to try again.")
        return
    say("chromium installed.")


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
        ensure_chromium()
        run([str(PYTHON), "-m", "pytest", *args[1:]])
    sluice = BIN / f"sluice{EXE}"
    if not sluice.exists():
        fail(f"{sluice} is missing; delete {STAMP} and run again to reinstall")
    run([str(sluice), *args])


if __name__ == "__main__":
    main()
