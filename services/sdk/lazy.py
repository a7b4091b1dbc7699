"""A module imported on its first use rather than when a service is loaded.

Every one-box process (`sluice scan`, `sluice up`, each `--workers` process) loads every
built-in service, and most of them only ever see a few file types: lief alone took 0.5-0.8 s of
CPU to import in each process, for services that a scan of documents never calls. A service
names such a library (or its own heavy submodule) with `lazy_import` and uses it as usual; the
import happens in the first task that touches it.

`importlib.util.LazyLoader` would do the same, but on Python 3.11 two threads touching a
half-loaded module at once can see it empty; `importlib.import_module` holds the import lock.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class _LazyModule(ModuleType):
    def __getattr__(self, attr: str) -> object:
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)  # the next look-up of `attr` is an ordinary one
        return value


def lazy_import(name: str) -> ModuleType:
    """`name` (a dotted module name), imported when one of its attributes is first read."""
    return _LazyModule(name)
