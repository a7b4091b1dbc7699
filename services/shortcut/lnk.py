"""Windows shortcuts (.lnk) through LnkParse3: what runs, with what, from where, made on which machine."""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import LnkParse3


@dataclass
class Shortcut:
    target: str
    arguments: str
    working_dir: str
    icon: str
    description: str
    machine_id: str
    tracker_mac: str
    created: str
    appended: int  # bytes after the shortcut's terminal block (a payload riding along)

    @property
    def command_line(self) -> str:
        return f"{self.target} {self.arguments}".strip()


def _str(value: Any) -> str:
    return str(value).strip("\0 ") if value else ""


def _target(parsed: dict[str, Any]) -> str:
    """The first of: the LinkInfo path, the environment-variable path, the relative path, the
    last names of the item-ID list (what Explorer shows)."""
    info = parsed.get("link_info") or {}
    if info.get("local_base_path"):
        return _str(info.get("local_base_path")) + _str(info.get("common_path_suffix"))
    if info.get("network_share_name") or (info.get("location_info") or {}).get("net_name"):
        share = info.get("network_share_name") or info["location_info"].get("net_name")
        return f"{_str(share)}\\{_str(info.get('common_path_suffix'))}".rstrip("\\")
    extra = parsed.get("extra") or {}
    environment = extra.get("ENVIRONMENTAL_VARIABLES_LOCATION_BLOCK") or {}
    if environment.get("target_unicode") or environment.get("target_ansi"):
        return _str(environment.get("target_unicode") or environment.get("target_ansi"))
    data = parsed.get("data") or {}
    if data.get("relative_path"):
        return _str(data["relative_path"])
    items = [_str(item.get("primary_name") or item.get("long_name")) for item in parsed.get("target", {}).get("items", [])
             if isinstance(item, dict)]
    return "\\".join(i for i in items if i)


def _mac(droid: str) -> str:
    """The MAC address in a version-1 (time-based) tracker GUID, where Windows records it."""
    try:
        value = uuid.UUID(droid)
    except (ValueError, TypeError):
        return ""
    if value.version != 1 or value.node == 0:
        return ""
    return ":".join(f"{value.node:012x}"[i:i + 2] for i in range(0, 12, 2))


def parse(data: bytes) -> Shortcut:
    with warnings.catch_warnings():
        # LnkParse3 warns (and carries on) on damaged string data; what it could read is the result.
        warnings.simplefilter("ignore", UserWarning)
        parsed = LnkParse3.lnk_file(indata=data).get_json()
    strings = parsed.get("data") or {}
    extra = parsed.get("extra") or {}
    tracker = extra.get("DISTRIBUTED_LINK_TRACKER_BLOCK") or {}
    # LnkParse3 reports what follows the last data block as a TERMINAL_BLOCK whose size counts the
    # 4-byte terminator too.
    appended = max(0, int((extra.get("TERMINAL_BLOCK") or {}).get("size", 0)) - 4)
    return Shortcut(
        target=_target(parsed),
        arguments=_str(strings.get("command_line_arguments")),
        working_dir=_str(strings.get("working_directory")),
        icon=_str(strings.get("icon_location")),
        description=_str(strings.get("description")),
        machine_id=_str(tracker.get("machine_identifier")),
        tracker_mac=_mac(_str(tracker.get("droid_file_identifier"))),
        created=_str((parsed.get("header") or {}).get("creation_time")),
        appended=min(appended, len(data)),
    )
