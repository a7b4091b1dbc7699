"""Constant folding of JavaScript/JScript string expressions, on a real parse tree.

tree-sitter's JavaScript grammar parses hostile and broken code without giving up (a syntax error
becomes an ERROR node, the rest is still a tree), which regexes over JavaScript cannot match:
nested parentheses, escapes inside literals, `+` between a string and a number. Every expression
whose inputs are all literals (or variables assigned a literal exactly once) is evaluated the way
JavaScript would, and written back as one string literal: `"Ws"+"cript.Sh"+"ell"`,
`String.fromCharCode(104,116)`, `"lehs".split("").reverse().join("")`, `"h%74tp".replace(...)`,
`unescape(...)`, `atob(...)`, `["a","b"].join("")`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from urllib.parse import unquote

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

_LANGUAGE = Language(tree_sitter_javascript.language())
Value = str | int | float | list


def _string(node: Node) -> str:
    raw = node.text.decode("utf-8", "replace")[1:-1]
    try:
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return raw


def _number(node: Node) -> int | float | None:
    text = node.text.decode().lower()
    try:
        return int(text, 0) if text.startswith(("0x", "0o", "0b")) else (float(text) if "." in text or "e" in text else int(text))
    except ValueError:
        return None


def _js_str(value: Value) -> str:
    if isinstance(value, list):
        return ",".join(map(_js_str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _atob(value: str) -> str | None:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None


class Folder:
    """One script's tree, its constant variables, and the folding of its expressions."""

    MAX_DEPTH = 400  # expression nesting followed before giving up (Python's stack, not JavaScript's)

    CHECK_EVERY = 4096  # nodes walked between looks at the clock

    def __init__(self, source: bytes, deadline: float = float("inf")) -> None:
        self.source = source
        self.deadline = deadline
        self.tree = Parser(_LANGUAGE).parse(source)
        self.constants: dict[str, Value] = {}
        # Each node folded once (by its id): the rewriting walk asks about every node, and a long
        # `"a" + "b" + ...` chain would otherwise be folded again from each of its links.
        self._memo: dict[int, Value | None] = {}
        self._collect_constants()

    def _collect_constants(self) -> None:
        """Variables given a foldable value exactly once and never assigned again."""
        writes: dict[str, int] = {}
        declared: list[tuple[str, Node]] = []
        stack = [self.tree.root_node]
        walked = 0
        while stack:
            node = stack.pop()
            walked += 1
            if walked % self.CHECK_EVERY == 0 and time.monotonic() > self.deadline:
                return  # out of time: the constants found so far are used
            if node.type == "variable_declarator":
                name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
                if name is not None and name.type == "identifier":
                    key = name.text.decode()
                    writes[key] = writes.get(key, 0) + 1
                    if value is not None:
                        declared.append((key, value))
            elif node.type in ("assignment_expression", "augmented_assignment_expression", "update_expression"):
                target = node.child_by_field_name("left") or node.child_by_field_name("argument")
                if target is not None and target.type == "identifier":
                    writes[target.text.decode()] = writes.get(target.text.decode(), 2) + 2
            stack.extend(reversed(node.children))
        for key, value in sorted(declared, key=lambda kv: kv[1].start_byte):
            if writes.get(key) == 1:
                folded = self.fold(value)
                if folded is not None:
                    self.constants[key] = folded

    def fold(self, node: Node, depth: int = 0) -> Value | None:
        """The value of `node` if it is computed from literals only, else None (also past
        MAX_DEPTH: a chain too deep is left to the pattern rewrites)."""
        if depth > self.MAX_DEPTH:
            return None
        if node.id in self._memo:
            return self._memo[node.id]
        value = self._fold(node, depth)
        self._memo[node.id] = value
        return value

    def _fold(self, node: Node, depth: int) -> Value | None:  # noqa: C901 - one case per construct
        kind = node.type
        if kind == "string":
            return _string(node)
        if kind == "template_string" and not any(c.type == "template_substitution" for c in node.children):
            return node.text.decode("utf-8", "replace")[1:-1]
        if kind == "number":
            return _number(node)
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self.fold(node.named_children[0], depth + 1)
        if kind == "identifier":
            return self.constants.get(node.text.decode())
        if kind == "array":
            items = [self.fold(c, depth + 1) for c in node.named_children]
            return None if any(i is None for i in items) else items
        if kind == "binary_expression" and node.child_by_field_name("operator").type == "+":
            left = self.fold(node.child_by_field_name("left"), depth + 1)
            right = self.fold(node.child_by_field_name("right"), depth + 1)
            if left is None or right is None:
                return None
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                return left + right
            return _js_str(left) + _js_str(right)
        if kind == "call_expression":
            return self._call(node, depth)
        return None

    def _call(self, node: Node, depth: int) -> Value | None:
        function, arguments = node.child_by_field_name("function"), node.child_by_field_name("arguments")
        if arguments is None or arguments.type != "arguments":
            return None
        args = [self.fold(a, depth + 1) for a in arguments.named_children]
        if any(a is None for a in args):
            return None
        if function.type == "identifier":
            name = function.text.decode()
            if len(args) == 1 and isinstance(args[0], str):
                if name in ("unescape", "decodeURIComponent", "decodeURI"):
                    return unquote(re.sub(r"%u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), args[0]))
                if name == "atob":
                    return _atob(args[0])
            return None
        if function.type != "member_expression":
            return None
        method = function.child_by_field_name("property").text.decode()
        target_node = function.child_by_field_name("object")
        if target_node.text == b"String" and method == "fromCharCode":
            return "".join(chr(int(a)) for a in args) if all(isinstance(a, (int, float)) and 0 <= a < 0x110000 for a in args) else None
        target = self.fold(target_node, depth + 1)
        return _method(target, method, args) if target is not None else None

    def rewritten(self) -> str:
        """The source with every foldable expression (that is not already a literal) replaced by its value."""
        pieces: list[bytes] = []
        cursor = 0
        stack = [self.tree.root_node]
        walked = 0
        while stack:
            node = stack.pop()
            walked += 1
            if walked % self.CHECK_EVERY == 0 and time.monotonic() > self.deadline:
                break  # out of time: the rest of the source stays as it is
            if node.type in ("binary_expression", "call_expression", "parenthesized_expression", "array") or (
                    node.type == "identifier" and _is_read(node)):
                value = self.fold(node)
                if isinstance(value, str) and node.start_byte >= cursor:
                    pieces.append(self.source[cursor:node.start_byte])
                    pieces.append(json.dumps(value, ensure_ascii=False).encode())
                    cursor = node.end_byte
                    continue
            stack.extend(reversed(node.children))
        pieces.append(self.source[cursor:])
        return b"".join(pieces).decode("utf-8", "replace")


def _is_read(node: Node) -> bool:
    """An identifier used as a value (not the name being declared, assigned or a property)."""
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "variable_declarator" and parent.child_by_field_name("name") == node:
        return False
    if parent.type in ("assignment_expression", "augmented_assignment_expression") and parent.child_by_field_name("left") == node:
        return False
    return parent.type not in ("function_declaration", "formal_parameters", "member_expression", "call_expression")


def _method(target: Value, method: str, args: list[Value]) -> Value | None:
    """String and array methods obfuscators chain: split/reverse/join/replace/substr/case/concat."""
    if isinstance(target, list):
        if method == "reverse" and not args:
            return target[::-1]
        if method == "join":
            sep = _js_str(args[0]) if args else ","
            return sep.join(_js_str(t) for t in target)
        return None
    if not isinstance(target, str):
        return None
    strs = [a for a in args if isinstance(a, str)]
    if method == "split" and len(strs) == 1:
        return list(target) if strs[0] == "" else target.split(strs[0])
    if method in ("replace", "replaceAll") and len(strs) == 2:
        return target.replace(strs[0], strs[1], 1 if method == "replace" else -1)
    if method == "concat" and len(strs) == len(args):
        return target + "".join(strs)
    if method in ("toLowerCase", "toUpperCase") and not args:
        return target.lower() if method == "toLowerCase" else target.upper()
    if method in ("substr", "substring", "slice", "charAt") and args and all(isinstance(a, int) for a in args):
        start = args[0]
        if method == "charAt":
            return target[start:start + 1]
        if method == "substr":
            return target[start:start + args[1]] if len(args) > 1 else target[start:]
        return target[start:args[1]] if len(args) > 1 else target[start:]
    return None


def fold_javascript(text: str, deadline: float = float("inf")) -> str:
    """`text` with its literal-only string expressions evaluated (unchanged if nothing folds);
    past `deadline` (a `time.monotonic()` value) the rest is left as it is."""
    return Folder(text.encode("utf-8", "replace"), deadline).rewritten()
