"""YAML loading that refuses what a catalog file never needs: aliases, duplicate keys, huge files."""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_FILE_BYTES = 256 * 1024

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlProblem(Exception):
    """A problem with a YAML document, with the location in the document where known."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


class _StrictLoader(_Base):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise YamlProblem(
                    f"line {line}",
                    f"duplicate key {key!r} (first at line {seen[key]}): keep one of them",
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


def _refuse_aliases(root: yaml.Node) -> None:
    """Aliases share nodes; one shared node means an alias was used (the alias-bomb vector)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise YamlProblem(
                f"line {node.start_mark.line + 1}",
                "YAML anchors and aliases (&name / *name) are not allowed in catalog files: "
                "write the value out",
            )
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def load_yaml_file(path: Path):
    """Parse one catalog YAML file or raise ``YamlProblem`` with a message that says what to fix."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise YamlProblem("(file)", f"cannot be read: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise YamlProblem(
            "(file)", f"is {size // 1024} KiB; catalog files are limited to 256 KiB: split or shorten it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise YamlProblem("(file)", "is not UTF-8 text") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlProblem("(document)", "the file is empty")
        _refuse_aliases(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise YamlProblem(where, f"not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise YamlProblem("(document)", f"not valid YAML: {e}") from None
    except RecursionError:
        raise YamlProblem("(document)", "is nested too deeply to be a scenario") from None
    finally:
        loader.dispose()
