"""Find a service by name (built-in) or folder (custom) and build it from its manifest."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from services.sdk.base import ServiceBase, building_manifest
from services.sdk.manifest import ManifestError, load_manifest

BUILTIN_ROOT = Path(__file__).resolve().parent.parent


def builtin_services() -> list[str]:
    """Names of the folders under services/ that hold a manifest."""
    return sorted(p.parent.name for p in BUILTIN_ROOT.glob("*/service_manifest.yml"))


def service_folder(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if (path / "service_manifest.yml").is_file():
        return path.resolve()
    builtin = BUILTIN_ROOT / str(name_or_path)
    if (builtin / "service_manifest.yml").is_file():
        return builtin
    known = ", ".join(builtin_services())
    raise ManifestError(f"no service {str(name_or_path)!r}: not a folder with service_manifest.yml, nor a built-in ({known})")


def _service_class(folder: Path) -> type[ServiceBase]:
    module_file = folder / "service.py"
    if not module_file.is_file():
        raise ManifestError(f"{folder}: a service folder needs service.py defining a ServiceBase subclass")
    if folder.parent == BUILTIN_ROOT:
        module = importlib.import_module(f"services.{folder.name}.service")
    else:
        mod_name = f"sluice_custom_{folder.name}"
        # As `python service.py` would: the folder's own modules import by their plain names.
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        spec = importlib.util.spec_from_file_location(mod_name, module_file)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    classes = [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, ServiceBase) and obj is not ServiceBase and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise ManifestError(f"{module_file}: expected one ServiceBase subclass, found {len(classes)}")
    return classes[0]


def load_service(name_or_path: str | Path, config_overrides: dict[str, Any] | None = None) -> ServiceBase:
    """The service object, its manifest validated (a bad manifest fails here, at start)."""
    folder = service_folder(name_or_path)
    manifest = load_manifest(folder, config_overrides)
    token = building_manifest.set(manifest)
    try:
        return _service_class(folder)(dict(manifest.config))
    finally:
        building_manifest.reset(token)


def fresh_instance(service: ServiceBase) -> ServiceBase:
    """Another instance of the same service and config (the updater checks rules on one)."""
    token = building_manifest.set(service.manifest)
    try:
        return type(service)(dict(service.config))
    finally:
        building_manifest.reset(token)
