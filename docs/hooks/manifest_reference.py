"""Write the manifest reference from ``edgesbert/runtime/manifest.py`` itself (a mkdocs hook).

docs/manifest.md ends with ``MARKER``; when the site is built, this hook puts there one table per section of
``edgesbert.json`` (each dataclass the manifest is made of: its JSON keys, their types, whether a file must
hold them and what the runtime reads when it does not, and what each means), the values of its
vocabularies (the enums), the properties the runtime derives, and the module's constants. The meanings are
the module's own docstrings, ``#:`` comments and end-of-line comments; whether a key is required is found
by removing it from a complete manifest and parsing what is left with ``Manifest.from_dict``, so the
page says what the code does.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from edgesbert.runtime.manifest import plain

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

MARKER = "<!-- manifest reference: generated here by docs/hooks/manifest_reference.py -->"
MODULE = "edgesbert.runtime.manifest"


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Put the reference where docs/manifest.md has the marker."""
    return markdown.replace(MARKER, reference()) if MARKER in markdown else markdown


def reference() -> str:
    """The reference, in Markdown: sections, vocabularies, derived properties, constants."""
    module = importlib.import_module(MODULE)
    notes = Descriptions(inspect.getsource(module))
    sections = _sections(module.Manifest)
    required = _required_keys(module)
    parts = [f"## `{MODULE}`\n\n{_markdown(inspect.getdoc(module))}"]
    for cls, key in sections.items():
        parts.append(_section(cls, key, notes, required))
    enums = [tp for cls in sections for tp in _named_types(cls) if issubclass(tp, Enum)]
    for enum in dict.fromkeys(enums):
        rows = [
            f"| `{member.value}` | `{member.name}` | {notes.of(enum.__name__, member.name)} |"
            for member in enum
        ]
        table = "| value | name | meaning |\n| --- | --- | --- |\n" + "\n".join(rows)
        parts.append(f"## {enum.__name__}\n\n{_markdown(inspect.getdoc(enum))}\n\n{table}")
    constants = [
        f"| `{name}` | `{json.dumps(plain(value))}` | {notes.of('', name)} |"
        for name, value in vars(module).items()
        if name.isupper() and len(name) > 1 and isinstance(value, str | int | float | tuple)
    ]
    table = "| name | value | meaning |\n| --- | --- | --- |\n" + "\n".join(constants)
    parts.append(f"## Constants\n\n{table}")
    return "\n\n".join(parts) + "\n"


class Descriptions:
    """The comments of a module's source that describe a name: ``#:`` lines above it, or one after it."""

    def __init__(self, source: str) -> None:
        lines = source.splitlines()
        comments = {
            token.start[0]: (token.string, not lines[token.start[0] - 1][: token.start[1]].strip())
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT
        }
        self.text: dict[tuple[str, str], str] = {}
        for owner, statement in _assignments(ast.parse(source)):
            above: list[str] = []
            line = statement.lineno - 1
            while comments.get(line, ("", False))[0].startswith("#:") and comments[line][1]:
                above.insert(0, comments[line][0].removeprefix("#:").strip())
                line -= 1
            after, alone = comments.get(statement.lineno, ("", True))
            words = " ".join(above) or ("" if alone else after.removeprefix("#").strip())
            self.text[owner, _target(statement)] = _markdown(words).replace("|", "\\|")  # in a table cell

    def of(self, owner: str, name: str) -> str:
        """The description of ``name`` in class ``owner`` ("" for the module's own names)."""
        return self.text.get((owner, name), "")


def _assignments(tree: ast.Module) -> list[tuple[str, ast.Assign | ast.AnnAssign]]:
    """Every assignment of the module and of its classes, with the class's name ("" for the module)."""
    found: list[tuple[str, ast.Assign | ast.AnnAssign]] = []
    for node in tree.body:
        body, owner = (node.body, node.name) if isinstance(node, ast.ClassDef) else ([node], "")
        found += [(owner, n) for n in body if isinstance(n, ast.Assign | ast.AnnAssign)]
    return [(owner, n) for owner, n in found if isinstance(_first_target(n), ast.Name)]


def _first_target(statement: ast.Assign | ast.AnnAssign) -> ast.expr:
    return statement.targets[0] if isinstance(statement, ast.Assign) else statement.target


def _target(statement: ast.Assign | ast.AnnAssign) -> str:
    target = _first_target(statement)
    return target.id if isinstance(target, ast.Name) else ""


def _sections(manifest: type) -> dict[type, str]:
    """Each dataclass of the manifest, the top level first, with its key in the JSON (``variants[]``)."""
    found, queue = {manifest: ""}, [manifest]
    while queue:
        cls = queue.pop(0)
        for field in dataclasses.fields(cls):
            inner = [tp for tp in _named_types(_hints(cls)[field.name]) if dataclasses.is_dataclass(tp)]
            for tp in inner:
                if tp not in found:
                    many = typing.get_origin(_hints(cls)[field.name]) is tuple
                    found[tp] = _join(found[cls], field.name) + ("[]" if many else "")
                    queue.append(tp)
    return found


def _section(cls: type, key: str, notes: Descriptions, required: dict[str, str]) -> str:
    where = f"`{key}`" if key else "the top level"
    rows = [
        f"| `{field.name}` | {_type(_hints(cls)[field.name])} | {required[_join(key, field.name)]} | "
        f"{notes.of(cls.__name__, field.name)} |"
        for field in dataclasses.fields(cls)
    ]
    table = "| key | type | if absent | meaning |\n| --- | --- | --- | --- |\n" + "\n".join(rows)
    text = f"## {cls.__name__}\n\n{_markdown(inspect.getdoc(cls))} In `edgesbert.json`: {where}.\n\n{table}"
    derived = [
        f"- `{name}`: "
        + textwrap.indent(_markdown(inspect.getdoc(value)), "    ").lstrip()  # all in the item
        for name, value in vars(cls).items()
        if isinstance(value, property)
    ]
    if derived:
        text += "\n\nWhat the runtime derives from them (not stored):\n\n" + "\n".join(derived)
    return text


def _required_keys(module: types.ModuleType) -> dict[str, str]:
    """Whether each key (``variants[].name``) is required, or else the value read in its place.

    Found by removing the key from a complete manifest of each kind and parsing what is left.
    """
    kinds = {kind.value for kind in module.ModelKind}
    failing: dict[str, set[str]] = {}
    absent: dict[tuple[str, str], Any] = {}
    for kind in sorted(kinds):
        complete = _sample(module.Manifest) | {"kind": kind}
        for path in _paths(module.Manifest):
            trimmed = copy.deepcopy(complete)
            _remove(trimmed, path)
            failing.setdefault(_key(path), set())
            try:
                parsed = module.Manifest.from_dict(trimmed)
            except module.ManifestError:
                failing[_key(path)].add(kind)
            else:
                absent[_key(path), kind] = plain(_attribute(parsed, path))
    result = {}
    for key, kinds_failing in failing.items():
        section = key.rsplit(".", 1)[0].removesuffix("[]") if "." in key else ""
        read_by = failing[section] if section else kinds  # a section's keys matter where it is read
        if kinds_failing and kinds_failing >= read_by:
            result[key] = "required"
        elif kinds_failing:
            result[key] = "required for a " + " or ".join(sorted(kinds_failing))
        else:
            value = absent[key, min(read_by)]
            result[key] = f"`{json.dumps(value, ensure_ascii=False)}`"
    return result


def _paths(cls: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path of a dataclass's JSON form, its sections' included: ``("variants", 0, "name")``."""
    paths: list[tuple[str | int, ...]] = []
    for field in dataclasses.fields(cls):
        hint, path = _hints(cls)[field.name], (*prefix, field.name)
        paths.append(path)
        for inner in [tp for tp in typing.get_args(hint) or [hint] if dataclasses.is_dataclass(tp)]:
            many = typing.get_origin(hint) is tuple
            paths += _paths(inner, (*path, 0) if many else path)  # a list's first item stands for all
    return paths


def _key(path: tuple[str | int, ...]) -> str:
    """``("variants", 0, "name")`` -> ``variants[].name``."""
    key = ""
    for step in path:
        key = key + "[]" if isinstance(step, int) else _join(key, step)
    return key


def _sample(tp: Any) -> Any:
    """A JSON value of type ``tp`` that the parser accepts (every string "x": names match names)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return {field.name: _sample(_hints(tp)[field.name]) for field in dataclasses.fields(tp)}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return next(iter(tp)).value
    if origin is tuple:
        return [_sample(args[0])] if args[-1] is Ellipsis else [_sample(arg) for arg in args]
    if origin is Mapping:
        return {"x": _sample(args[1])}
    if origin in (typing.Union, types.UnionType):
        return _sample(args[0])
    return {str: "x", int: 1, float: 1.0, bool: True}[tp]


def _remove(data: Any, path: tuple[str | int, ...]) -> None:
    for step in path[:-1]:
        data = data[step]
    del data[path[-1]]


def _attribute(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if value is None:
            return None
        value = value[step] if isinstance(step, int) else getattr(value, step)
    return value


def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _named_types(tp: Any) -> list[type]:
    """The classes named in a type hint: ``tuple[GraphVariant, ...]`` -> [GraphVariant]."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return [tp, *[t for f in dataclasses.fields(tp) for t in _named_types(_hints(tp)[f.name])]]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return [tp]
    return [t for arg in typing.get_args(tp) for t in _named_types(arg)]


def _type(tp: Any) -> str:
    """A type hint in JSON's words: ``tuple[str, ...]`` -> "list of string"."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return f"object ([{tp.__name__}](#{tp.__name__.lower()}))"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return f"string ([{tp.__name__}](#{tp.__name__.lower()}))"
    if origin is tuple:
        if args[-1] is Ellipsis:
            return f"list of {_type(args[0])}"
        return "[" + ", ".join(_type(arg) for arg in args) + "]"
    if origin is Mapping:
        return f"object of {_type(args[0])} to {_type(args[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arg is type(None) else _type(arg) for arg in args)
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _markdown(text: str | None) -> str:
    """A docstring or comment as Markdown: reStructuredText's double backticks made single."""
    return (text or "").replace("``", "`")
