"""Find a service by name (built-in) or folder (custom), find its code as Assemblyline does, and
build it from its manifest.

The class is found, in this order: `SERVICE_PATH=module.Class` in the environment, an
`ENV SERVICE_PATH` line in the folder's Dockerfile (AL4's own convention), `service_path` in the
manifest, then the one service class in `service.py` (defined there or imported into it), and
for an Assemblyline 3 folder with neither, the one `.py` file that defines a service class.
A folder without a manifest works when its class describes itself (AL3's `SERVICE_*`
attributes). Every failure is a `ManifestError` of one line that says what to do.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from services.sdk.al4_real import AL4PackageService, is_package_service
from services.sdk.base import ServiceBase, building_manifest
from services.sdk.manifest import ManifestError, load_manifest, parse_manifest

BUILTIN_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "service_manifest.yml"
SERVICE_PATH_ENV = "SERVICE_PATH"
_DOCKER_SERVICE_PATH = re.compile(r"^\s*ENV\s+SERVICE_PATH(?:\s*=\s*|\s+)[\"']?([\w.]+)", re.MULTILINE)
_NOT_SERVICE_CODE = re.compile(r"^(test_.*|.*_test|setup|conftest|update_server|installer|__init__)\.py$")


def builtin_services() -> list[str]:
    """Names of the folders under services/ that hold a manifest."""
    return sorted(p.parent.name for p in BUILTIN_ROOT.glob(f"*/{MANIFEST}"))


def service_folder(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_dir() and (path / MANIFEST).is_file() or path.is_dir() and any(path.glob("*.py")):
        return path.resolve()
    builtin = BUILTIN_ROOT / str(name_or_path)
    if (builtin / MANIFEST).is_file():
        return builtin
    known = ", ".join(builtin_services())
    raise ManifestError(f"no service {str(name_or_path)!r}: not a folder with {MANIFEST} or Python code, "
                        f"nor a built-in ({known})")


def _service_path(folder: Path, manifest_path: str | None) -> str | None:
    """`module.Class` as AL4 would find it: the environment, the Dockerfile, then the manifest."""
    if os.environ.get(SERVICE_PATH_ENV):
        return os.environ[SERVICE_PATH_ENV]
    dockerfile = folder / "Dockerfile"
    if dockerfile.is_file():
        found = _DOCKER_SERVICE_PATH.search(dockerfile.read_text(errors="replace"))
        if found:
            return found.group(1)
    return manifest_path


def _own_modules_first(folder: Path) -> None:
    """Make the folder's own modules the ones its code imports by plain name: its path first, and
    a same-named module another service folder loaded (two AL4 services both with `sample.py`)
    forgotten, so the import finds this folder's. The other service keeps the module it has."""
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))
    names = [p.stem for p in folder.glob("*.py")] + [p.parent.name for p in folder.glob("*/__init__.py")]
    for name in names:
        known = sys.modules.get(name)
        origin = Path(getattr(known, "__file__", "") or "").resolve()
        if known is not None and not origin.is_relative_to(folder):
            del sys.modules[name]


def _import(folder: Path, module_name: str, file: Path | None = None) -> ModuleType:
    """Import one of the folder's modules as `python -m` in the folder would: its sibling modules
    import by their plain names. A module of the same name from another folder is not reused."""
    known = sys.modules.get(module_name)
    if known is not None and Path(getattr(known, "__file__", "") or "").resolve().is_relative_to(folder):
        return known
    file = file or folder / (module_name.replace(".", "/") + ".py")
    if not file.is_file() and (folder / module_name.replace(".", "/") / "__init__.py").is_file():
        file = folder / module_name.replace(".", "/") / "__init__.py"
    if not file.is_file():
        raise ManifestError(f"{folder}: no module {module_name!r} ({file.name} is missing); fix SERVICE_PATH")
    name = module_name if known is None else f"sluice_custom_{folder.name}_{module_name}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ManifestError(f"{exc.filename}:{exc.lineno}: {exc.msg} (fix the service's code)") from None
    except ImportError as exc:
        del sys.modules[name]
        raise ManifestError(f"{file}: {_import_advice(exc)}") from None
    return module


def _import_advice(exc: ImportError) -> str:
    missing = (exc.name or "").split(".")[0]
    if missing == "assemblyline_v4_service":
        return ("imports assemblyline_v4_service, which is not installed: change those imports to services.sdk, "
                "or pip install assemblyline-v4-service (needs a C compiler) to run it unchanged")
    if missing in ("assemblyline", "al_services"):
        return "imports Assemblyline 3 modules: import them from services.sdk.al3 instead"
    if missing == "mass_client":
        return "imports mass_client: import from services.sdk.mass instead"
    return f"{exc} (install it where the service runs, e.g. pip install {missing})" if missing else str(exc)


def _is_service_class(obj: object) -> bool:
    """Ours (not the SDK's own bases: MASS clients, AL3), or the real AL4 package's."""
    if is_package_service(obj):
        return not obj.__module__.startswith("assemblyline_v4_service")
    return inspect.isclass(obj) and issubclass(obj, ServiceBase) and not obj.__module__.startswith("services.sdk")


def _only_class(candidates: list[type], where: str) -> type:
    """The one service class; a base class of another candidate does not count."""
    unique = list(dict.fromkeys(candidates))
    leaves = [c for c in unique if not any(o is not c and issubclass(o, c) for o in unique)]
    if len(leaves) != 1:
        found = ", ".join(c.__name__ for c in leaves) or "none"
        raise ManifestError(f"{where}: expected one ServiceBase subclass, found {len(leaves)} ({found}); "
                            f"name it with ENV SERVICE_PATH module.Class in the Dockerfile")
    return leaves[0]


def _service_class(folder: Path, manifest_path: str | None) -> type:
    if folder.parent == BUILTIN_ROOT:
        module = importlib.import_module(f"services.{folder.name}.service")
        return _only_class([o for o in vars(module).values() if _is_service_class(o)], str(folder / "service.py"))
    _own_modules_first(folder)
    path = _service_path(folder, manifest_path)
    if path:
        module_name, _, class_name = path.rpartition(".")
        if not module_name:
            raise ManifestError(f"SERVICE_PATH {path!r}: expected module.Class (e.g. sample.Sample)")
        cls = getattr(_import(folder, module_name), class_name, None)
        if cls is None:
            raise ManifestError(f"SERVICE_PATH {path!r}: {module_name} has no class {class_name}")
        if not (inspect.isclass(cls) and issubclass(cls, ServiceBase) or is_package_service(cls)):
            raise ManifestError(f"SERVICE_PATH {path!r}: {class_name} is not a ServiceBase subclass "
                                f"(import ServiceBase from services.sdk)")
        return cls
    if (folder / "service.py").is_file():
        module = _import(folder, f"sluice_custom_{folder.name}", folder / "service.py")
        return _only_class([o for o in vars(module).values() if _is_service_class(o)], str(folder / "service.py"))
    files = [f for f in sorted(folder.glob("*.py"))
             if not _NOT_SERVICE_CODE.match(f.name) and "ServiceBase" in f.read_text(errors="replace")]
    if not files:
        raise ManifestError(f"{folder}: no service code: write service.py with a ServiceBase subclass, "
                            f"or name it with ENV SERVICE_PATH module.Class in a Dockerfile")
    modules = [_import(folder, f.stem) for f in files]
    classes = [o for m in modules for o in vars(m).values() if _is_service_class(o) and o.__module__ == m.__name__]
    return _only_class(classes, str(folder))


def _manifest_for(folder: Path, overrides: dict[str, Any] | None):
    """The folder's manifest; None when it has none (its class may describe itself)."""
    if (folder / MANIFEST).is_file():
        return load_manifest(folder, overrides)
    return None


def load_service(name_or_path: str | Path, config_overrides: dict[str, Any] | None = None) -> ServiceBase:
    """The service object, its manifest validated (a bad manifest fails here, at start)."""
    folder = service_folder(name_or_path)
    manifest = _manifest_for(folder, config_overrides)
    if manifest is not None and folder.parent != BUILTIN_ROOT:
        # The real assemblyline-v4-service package reads its manifest when imported, from here.
        os.environ["SERVICE_MANIFEST_PATH"] = str(folder / MANIFEST)
    cls = _service_class(folder, manifest.service_path if manifest else None)
    if manifest is None:
        raw = None if is_package_service(cls) else cls.class_manifest()
        if raw is None:
            raise ManifestError(f"{folder}: no {MANIFEST}; write one (name, version, accepts, heuristics), "
                                f"or run `sluice service new NAME` for a template")
        manifest = parse_manifest(raw, f"{folder} ({cls.__name__}'s class attributes)", config_overrides)
    if is_package_service(cls):
        return AL4PackageService(cls, manifest, folder / MANIFEST)
    token = building_manifest.set(manifest)
    try:
        return cls(dict(manifest.config))
    finally:
        building_manifest.reset(token)


def fresh_instance(service: ServiceBase) -> ServiceBase:
    """Another instance of the same service and config (the updater checks rules on one)."""
    token = building_manifest.set(service.manifest)
    try:
        return type(service)(dict(service.config))
    finally:
        building_manifest.reset(token)
