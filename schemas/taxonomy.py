"""The file-type taxonomy: every type a task can be published under.

Loaded once from `filetypes.yml`. A service's `accepts`/`rejects` regexes are expanded against
this list into the subjects its consumer filters on, so a type missing here can never be routed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from importlib import resources

import msgspec
import yaml

from schemas.messages import SampleKind
from schemas.samples import kind_of_type


class TypeRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    magic: str | None = None
    mime: list[str] = []
    text: bool = False
    special: str | None = None
    head: str | None = None  # regex matched at the start of the file's head (latin-1), for what libmagic misses
    content: str | None = None  # regex searched (case-insensitive) in the head of content that is text


class Taxonomy(msgspec.Struct, frozen=True, dict=True):
    rules: list[TypeRule]
    extra_types: list[str] = []
    magika: dict[str, str] = {}  # magika label -> type, for files libmagic leaves `unknown`

    @functools.cached_property
    def types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([r.type for r in self.rules] + self.extra_types))


_TYPE_RE = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$")


@functools.cache
def taxonomy() -> Taxonomy:
    raw = yaml.safe_load(resources.files("schemas").joinpath("filetypes.yml").read_text())
    tax = msgspec.convert(raw, Taxonomy)
    for name in tax.types:
        if not _TYPE_RE.match(name):
            raise ValueError(f"filetypes.yml: type {name!r} is not a slash path of [a-z0-9_-] tokens")
    unknown_targets = set(tax.magika.values()) - set(tax.types)
    if unknown_targets:
        raise ValueError(f"filetypes.yml: magika maps to types that are not in the taxonomy: {sorted(unknown_targets)}")
    return tax


def type_tokens(file_type: str) -> str:
    """`executable/windows/pe32` → `executable.windows.pe32` (subject tokens)."""
    return file_type.replace("/", ".")


def matching_types(accepts: str, rejects: str, kinds: Collection[SampleKind] = (SampleKind.FILE,)) -> list[str]:
    """The known types a service takes: those of its kinds of sample that `re.match(accepts)` and
    not `re.match(rejects)`, as Assemblyline."""
    acc, rej = re.compile(accepts), re.compile(rejects) if rejects else None
    return [t for t in taxonomy().types
            if kind_of_type(t) in kinds and acc.match(t) and not (rej and rej.match(t))]
