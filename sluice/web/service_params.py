"""Services' submission parameters (e.g. the extract service's archive password), checked against
their manifests wherever a submission comes in: an upload, a sample, a resubmission.

A misspelt parameter or a value of the wrong type is a clear 400 instead of something a service
silently ignores. Values come typed in JSON bodies (checked strictly: `42` is not a password),
or as text in an upload's query string (`param=extract.password=s3cret`), read by the type the
manifest declares.
"""

from __future__ import annotations

import functools
from typing import Any

from litestar.exceptions import HTTPException

from services.sdk.loader import builtin_services, service_folder
from services.sdk.manifest import SubmissionParam, load_manifest

TYPES = {"str": str, "int": int, "bool": bool, "list": str}  # "list": one value chosen from the manifest's list
TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


@functools.cache
def manifest_params() -> dict[str, tuple[SubmissionParam, ...]]:
    """The submission parameters of each built-in service, from its manifest (read once)."""
    params = {}
    for name in builtin_services():
        manifest = load_manifest(service_folder(name) / "service_manifest.yml")
        params[manifest.name] = tuple(p for p in manifest.submission_params if not p.hide)
    return params


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=f"service_params: {detail}")


def _declared(service: str, name: str, known: set[str]) -> SubmissionParam:
    if service not in known:
        raise _refuse(f"no service named {service}")
    declared = {p.name: p for p in manifest_params().get(service, ())}
    param = declared.get(name)
    if param is None:
        raise _refuse(f"{service} takes no parameter {name!r} (it takes: {', '.join(declared) or 'none'})")
    return param


def checked(service_params: dict[str, dict[str, Any]], known: set[str]) -> dict[str, dict[str, object]]:
    """Typed values (a JSON body), each as its manifest declares it, or a 400 saying which is wrong."""
    result: dict[str, dict[str, object]] = {}
    for service, values in service_params.items():
        for name, value in values.items():
            param = _declared(service, name, known)
            if type(value) is not TYPES.get(param.type, str):  # noqa: E721 - bool is an int subclass, and must not pass as one
                raise _refuse(f"{service}.{name} is a {param.type}")
            if param.type == "list" and param.list and value not in param.list:
                raise _refuse(f"{service}.{name} is one of {param.list}")
            result.setdefault(service, {})[name] = value
    return result


def _typed(param: SubmissionParam, label: str, text: str) -> object:
    if param.type == "int":
        try:
            return int(text)
        except ValueError:
            raise _refuse(f"{label} is an int, not {text[:40]!r}") from None
    if param.type == "bool":
        if text.lower() not in TRUE | FALSE:
            raise _refuse(f"{label} is a bool (true or false), not {text[:40]!r}")
        return text.lower() in TRUE
    return text


def from_text(items: tuple[str, ...], known: set[str]) -> dict[str, dict[str, object]]:
    """`SERVICE.NAME=VALUE` items (an upload's query string), each read as its manifest's type."""
    typed: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        service, dot, name = key.partition(".")
        if not eq or not dot or not service or not name:
            raise _refuse(f"{item[:80]!r}: expected SERVICE.NAME=VALUE (e.g. extract.password=infected)")
        param = _declared(service, name, known)
        typed.setdefault(service, {})[name] = _typed(param, key, text)
    return checked(typed, known)

