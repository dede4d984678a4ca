"""Load policies.yaml with every problem tied to its line and key (synth time and `validate`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from batch_terminator.models.policies import PoliciesFile

# A policies file is a few kilobytes; a thousand policies fit in well under 1 MiB. Anything larger is
# refused before the pure-Python YAML parser spends minutes on it.
MAX_FILE_BYTES = 1024 * 1024
# Nodes a file may have once its aliases are expanded: YAML aliases share a node, so a small file
# can stand for billions of nodes ("billion laughs"), which validation would walk one by one.
MAX_EXPANDED_NODES = 100_000


def _loader_class() -> Any:
    """libyaml's scanner and parser where PyYAML was built with it (its wheels are), under
    PyYAML's own composer and safe constructor; else the pure-Python loader. Not CSafeLoader:
    its composer recurses in C and a deeply nested file (60 KB of `[`) crashes the process, where
    the Python composer raises RecursionError, reported as "nested too deeply". The parser
    is most of the time (bench/ measures it): a 760 KB file loads in about 3 s, not 12."""
    try:
        from yaml._yaml import CParser
        from yaml.composer import Composer
        from yaml.constructor import SafeConstructor
        from yaml.resolver import Resolver
    except ImportError:  # PyYAML without libyaml
        return yaml.SafeLoader

    class Loader(CParser, Composer, SafeConstructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        # CParser composes nodes too: these are the composer's, recursion checked.
        check_node = Composer.check_node
        get_node = Composer.get_node
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_node = Composer.compose_node

    return Loader


_LOADER: Any = _loader_class()


@dataclass(frozen=True)
class Problem:
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path or '(file)'}: {self.message}"


class PoliciesFileError(ValueError):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(f"{source} is not a valid policies file:\n{listing}")


def load_policies(path: str | Path) -> PoliciesFile:
    """Raises PoliciesFileError, whatever is wrong with the file (never anything else)."""
    path = Path(path)
    try:
        # At most one byte over the cap, whatever the file is: stat's size is 0 for a device
        # (/dev/zero), a FIFO or a /proc file, which would otherwise be read to the end.
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise PoliciesFileError(
                str(path),
                [Problem(None, "", f"too large: more than {MAX_FILE_BYTES:,} bytes")],
            )
        # As read_text reads: UTF-8, universal newlines.
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except OSError as exc:
        raise PoliciesFileError(
            str(path), [Problem(None, "", f"cannot read: {exc.strerror or exc}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise PoliciesFileError(
            str(path), [Problem(None, "", f"not UTF-8 text (byte {exc.start} is not)")]
        ) from exc
    return parse_policies(text, str(path))


def parse_policies(text: str, source: str = "policies.yaml") -> PoliciesFile:
    """Raises PoliciesFileError with every problem tied to its line and key."""
    try:
        return _parse(text, source)
    except RecursionError as exc:  # deep nesting, or an alias that contains itself
        raise PoliciesFileError(
            source, [Problem(None, "", "nested too deeply (or an alias contains itself)")]
        ) from exc


def _parse(text: str, source: str) -> PoliciesFile:
    if len(text) > MAX_FILE_BYTES:
        raise PoliciesFileError(
            source,
            [
                Problem(
                    None, "", f"too large: {len(text):,} characters (at most {MAX_FILE_BYTES:,})"
                )
            ],
        )
    loader: Any = None
    try:
        loader = _LOADER(text)  # the pure-Python reader refuses some characters here
        root = loader.get_single_node()
        if root is None:
            raise PoliciesFileError(
                source, [Problem(None, "", "file is empty: it needs at least `version: 1`")]
            )
        expanded = _expanded_size(root, {})
        if expanded > MAX_EXPANDED_NODES:
            raise PoliciesFileError(
                source,
                [
                    Problem(
                        None,
                        "",
                        f"aliases expand it to more than {MAX_EXPANDED_NODES:,} nodes "
                        f"({expanded:,}): write the values out",
                    )
                ],
            )
        duplicates = list(duplicate_keys(root, ""))
        if duplicates:
            raise PoliciesFileError(source, duplicates)
        # The data from the node just checked: the text is parsed once.
        data = loader.construct_document(root)
    except yaml.YAMLError as refused:  # syntax, tags (`!Ref`), unhashable keys
        exc = _same_error_everywhere(text, refused)
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PoliciesFileError(source, [Problem(line, "", f"not valid YAML: {problem}")]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    try:
        return PoliciesFile.model_validate(data)
    except ValidationError as exc:
        raise PoliciesFileError(
            source, [_locate(root, item) for item in exc.errors(include_url=False)]
        ) from exc


def _same_error_everywhere(text: str, error: yaml.YAMLError) -> yaml.YAMLError:
    """The pure-Python parser's error for a text libyaml refused, so that a file's error reads
    the same whether or not PyYAML was built with libyaml (libyaml words some of them otherwise:
    "mapping values are not allowed in this context" for "... allowed here"). A refused file is
    read twice; a valid one once. Raises RecursionError as the parser may."""
    if _LOADER is yaml.SafeLoader:
        return error
    try:
        yaml.SafeLoader(text).get_single_node()  # its reader refuses some text at once
    except yaml.YAMLError as python_error:
        return python_error
    return error  # the constructor's errors (tags, unhashable keys): the same code in both


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes under `node` with every alias expanded, in time linear in the distinct nodes (an
    alias is the very node object it names, so each is sized once). Raises RecursionError for
    nesting deeper than the interpreter allows (the caller reports it)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    total = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(item, sizes) for item in node.value)
    sizes[id(node)] = total
    return total


def duplicate_keys(node: yaml.Node, path: str) -> Iterator[Problem]:
    """Each key given a second time in a mapping under `node`, as a Problem (its line and key
    path, `policies[0].when`): YAML parsers disagree on which of the two wins."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            child = f"{path}.{name}" if path else name
            if name in seen:
                yield Problem(key.start_mark.line + 1, child, "key is given twice")
            seen.add(name)
            yield from duplicate_keys(value, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from duplicate_keys(item, f"{path}[{index}]")


UNKNOWN_KEY = re.compile(r"unknown key '([^']+)'")


def _locate(root: yaml.Node, error: Any) -> Problem:
    """Find the YAML node an error points at; for an unknown key, the key itself."""
    node, path = node_at(root, error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    unknown = UNKNOWN_KEY.search(message)
    if unknown and isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if key.value == unknown.group(1):
                name = f"{path}.{key.value}" if path else str(key.value)
                return Problem(key.start_mark.line + 1, name, message)
    line = node.start_mark.line + 1 if node is not None else None
    return Problem(line, path, message)


def node_at(root: yaml.Node, location: Sequence[Any]) -> tuple[yaml.Node | None, str]:
    """The YAML node a pydantic error's location names, and its key path (`policies[0].when`).
    pydantic adds locations of its own (union members): those keep the nearest node."""
    node: yaml.Node | None = root
    path = ""
    for part in location:
        child = _child(node, part)
        if child is None:
            break
        node = child
        path = (
            f"{path}[{part}]"
            if isinstance(part, int)
            else (f"{path}.{part}" if path else str(part))
        )
    return node, path


def _child(node: yaml.Node | None, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        found: yaml.Node | None = next(
            (value for key, value in node.value if key.value == part), None
        )
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None
