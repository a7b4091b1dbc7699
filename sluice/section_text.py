"""Every Assemblyline 4 section body format as terminal lines: what `sluice scan` and
`sluice service test` show of a section (the whole body is in `--json`).

A structured body is JSON text on the wire; a body that does not parse as its format says is
shown as the text it is. Nothing here styles or trusts the content: the caller cleans it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

SPARKS = "▁▂▃▄▅▆▇█"


def body_lines(body_format: str, body: str, config: dict[str, Any] | None = None) -> list[str]:
    """The body as display lines."""
    if body_format in ("TEXT", "MEMORY_DUMP") or not body:
        return body.splitlines()
    try:
        data = json.loads(body)
    except ValueError:
        return body.splitlines()
    return data_lines(body_format, data, config or {})


def data_lines(body_format: str, data: Any, config: dict[str, Any]) -> list[str]:
    render = _RENDERERS.get(body_format, _generic)
    try:
        return render(data, config)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):  # not the shape its format says
        return _generic(data, config)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _generic(data: Any, config: dict[str, Any]) -> list[str]:
    if isinstance(data, dict):
        return [f"{key}: {_value(value)}" for key, value in data.items()]
    if isinstance(data, list):
        return [_row(item, None) for item in data]
    return [_value(data)]


def _row(item: Any, columns: list[str] | None) -> str:
    if isinstance(item, dict):
        keys = columns or list(item)
        return "  ".join(f"{key}: {_value(item.get(key, ''))}" for key in keys)
    return _value(item)


def _ordered(data: list, config: dict[str, Any]) -> list[str]:
    return [f"{key}: {_value(value)}" for key, value in data]


def _table(data: list, config: dict[str, Any]) -> list[str]:
    columns = config.get("column_order") or None
    return [_row(row, columns) for row in data]


def _urls(data: list, config: dict[str, Any]) -> list[str]:
    return [f"{link.get('name')}  {link['url']}" if link.get("name") and link.get("name") != link["url"] else link["url"]
            for link in data]


def _graph(data: dict, config: dict[str, Any]) -> list[str]:
    low, high = data["data"]["domain"]
    values = data["data"]["values"]
    span = (high - low) or 1
    spark = "".join(SPARKS[min(len(SPARKS) - 1, max(0, int((v - low) / span * (len(SPARKS) - 1) + 0.5)))] for v in values)
    return [f"{data.get('type', 'graph')} {low}..{high}: {spark}"]


def _processes(data: list, config: dict[str, Any], depth: int = 0) -> list[str]:
    lines = []
    for proc in data:
        sigs = ", ".join(proc.get("signatures") or {})
        line = f"{'  ' * depth}{proc.get('process_pid')} {proc.get('process_name')}: {proc.get('command_line')}"
        lines.append(line + (f"  [{sigs}]" if sigs else "") + ("  (safelisted)" if proc.get("safelisted") else ""))
        lines += _processes(proc.get("children") or [], config, depth + 1)
    return lines


def _images(data: list, config: dict[str, Any]) -> list[str]:
    return [f"image {item['img']['name']} ({item['img']['sha256'][:12]})"
            + (f": {item['img']['description']}" if item['img'].get('description') else "") for item in data]


def _multi(data: list, config: dict[str, Any]) -> list[str]:
    lines = []
    for part_format, part, part_config in data:
        lines += ["────"] if part_format == "DIVIDER" else (
            _value(part).splitlines() if part_format in ("TEXT", "MEMORY_DUMP") else
            data_lines(part_format, part, part_config or {}))
    return lines


def _timeline(data: list, config: dict[str, Any]) -> list[str]:
    return [f"{node.get('opposite_content') or ''}  {node['title']}: {node.get('content') or ''}"
            + (f"  [{node['score']:+d}]" if node.get("score") else "") for node in data]


def _sandbox(data: dict, config: dict[str, Any]) -> list[str]:
    machine = data.get("machine_metadata") or {}
    head = " ".join(str(v) for v in (data.get("sandbox_name"), data.get("sandbox_version"), machine.get("platform")) if v)
    lines = [f"sandbox {head}: {len(data.get('processes') or [])} processes, {len(data.get('netflows') or [])} "
             f"network flows, {len(data.get('signatures') or [])} signatures"]
    lines += [f"process {p.get('pid')} {p.get('image')}: {p.get('command_line') or ''}" for p in data.get("processes") or []]
    lines += [f"flow {f.get('transport_layer_protocol') or ''} {f.get('destination_ip')}:{f.get('destination_port')}"
              for f in data.get("netflows") or []]
    lines += [f"signature {s['name']} ({s.get('type')})" for s in data.get("signatures") or []]
    return lines


_RENDERERS: dict[str, Callable[[Any, dict[str, Any]], list[str]]] = {
    "ORDERED_KEY_VALUE": _ordered,
    "TABLE": _table,
    "URL": _urls,
    "GRAPH_DATA": _graph,
    "PROCESS_TREE": _processes,
    "IMAGE": _images,
    "MULTI": _multi,
    "TIMELINE": _timeline,
    "SANDBOX": _sandbox,
}
