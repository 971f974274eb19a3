"""PyYAML's safe loader, composing node trees that are safe to walk: aliases are not
followed and nesting is bounded. Used by ``lab.spec.yamlread``."""

from __future__ import annotations

import yaml
from yaml.nodes import Node, ScalarNode

ALIAS_TAG = "tag:socket-lab:alias"  # stands in for an alias, which is reported, not followed
# Far deeper than any topology, far shallower than Python's recursion limit.
MAX_DEPTH = 64


class TooDeep(Exception):
    """Composing went deeper than ``MAX_DEPTH``, at ``line``."""

    def __init__(self, line: int) -> None:
        self.line = line


class Loader(yaml.SafeLoader):
    """Composes node trees; an alias becomes a placeholder scalar instead of a shared node,
    so a walk stays linear (no alias bombs) and the alias itself can be reported. Nesting
    deeper than ``MAX_DEPTH`` stops composing at the line where it goes too deep."""

    depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()  # type: ignore[no-untyped-call]
            return ScalarNode(ALIAS_TAG, "*" + str(event.anchor), event.start_mark, event.end_mark)
        if self.depth >= MAX_DEPTH:
            raise TooDeep(int(self.peek_event().start_mark.line) + 1)  # type: ignore[no-untyped-call]
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self.depth -= 1
