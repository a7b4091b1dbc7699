"""AL4's `self.ontology` for the services that use it: the structured parts of a result
(`add_result_part(Sandbox, {...})`, `add_other_part(key, text)`), kept per task and stored
beside the result as the JSON report object `ontology`.

AL4 validates each part against its ODM model and indexes it; Sluice has neither, so a part is
kept as the dict given, under the model's name, and the object can be fetched by name
(`sluice result SID --object ontology`).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections import defaultdict
from typing import Any

_current: contextvars.ContextVar[OntologyHelper] = contextvars.ContextVar("ontology")


class OntologyHelper:
    def __init__(self) -> None:
        self.results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.other: dict[str, Any] = {}

    def add_result_part(self, model: Any, data: dict[str, Any]) -> str | None:
        """Keep one part; returns its id (`<model>_<digest of the part>`), as AL4 gives one."""
        if not data:
            return None
        name = getattr(model, "__name__", str(model))
        part = dict(data)
        oid = part.setdefault("objectid", {}).get("ontology_id") or (
            f"{name.lower()}_{hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:22]}")
        part["objectid"]["ontology_id"] = oid
        self.results[name.lower()].append(part)
        return oid

    def add_other_part(self, key: str, data: Any) -> None:
        self.other[key] = data

    def reset(self) -> None:
        self.results.clear()
        self.other.clear()

    def parts(self) -> dict[str, Any] | None:
        """What the task added, or None when nothing."""
        if not self.results and not self.other:
            return None
        return {"results": dict(self.results), **({"other": self.other} if self.other else {})}


def current() -> OntologyHelper:
    """This task's ontology (each task runs in its own context, so concurrent tasks never share one)."""
    try:
        return _current.get()
    except LookupError:
        helper = OntologyHelper()
        _current.set(helper)
        return helper


def begin() -> contextvars.Token:
    return _current.set(OntologyHelper())


def end(token: contextvars.Token) -> dict[str, Any] | None:
    parts = _current.get().parts()
    _current.reset(token)
    return parts
