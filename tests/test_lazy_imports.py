"""Heavy libraries are imported by the first task that needs them, not by loading a service:
every one-box process (sluice scan/up and each --workers process) loads every built-in."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from services.sdk.lazy import lazy_import

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("lief", "oletools", "pypdf", "publicsuffixlist", "dissect.fat", "dissect.hypervisor")


def test_loading_every_builtin_service_imports_none_of_the_heavy_libraries() -> None:
    code = ("import json, sys\nfrom services.sdk.loader import builtin_services, load_service\n"
            "for name in builtin_services(): load_service(name)\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_lazy_module_is_imported_on_first_use_and_is_the_real_one() -> None:
    code = ("import sys\nfrom services.sdk.lazy import lazy_import\n"
            "m = lazy_import('wave')\nassert 'wave' not in sys.modules\n"
            "import wave\nassert m.open is wave.open and 'wave' in sys.modules\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_threads_touching_a_lazy_module_at_once_all_get_its_attribute() -> None:
    module = lazy_import("services.network.names")
    seen: list[object] = []
    start = threading.Barrier(8)

    def touch() -> None:
        start.wait()
        seen.append(module.examine)

    threads = [threading.Thread(target=touch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    from services.network.names import examine
    assert seen == [examine] * 8
