"""One ordering of a graph for the pictures and the written derivation.

Every picture and explanation lists nodes in one order, built from two pieces:

- `reading_order`: each node after its inputs, the first input's subgraph first, as code writes a computation
  (`autograd.core.topological_order`, which the engine's reverse pass uses too, explored first input first);
- `stage_order`: the same nodes regrouped stage by stage, the stages in computation order.

`topological_sort` (Kahn's algorithm) orders any small graph of items the same way: stages here, the shapes of
a drawing in `autograd.view.scene`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from autograd.core import Node, entry_order, topological_order

Item = TypeVar("Item", bound=Hashable)

def reading_order(root: Node) -> list[Node]:
    """The nodes under ``root``, each after its inputs, explored first input first.

    Any topological order would do for the chain rule; this one follows the order in which code usually
    writes a computation, so listings read like the program and generated names count up along it.
    """
    return topological_order(root, first_input_first=True)


def topological_sort(items: Iterable[Item], inputs: Mapping[Item, Iterable[Item]],
                     priority: Callable[[Item], Any] | None = None) -> tuple[list[Item], list[Item]]:
    """``items``, each after its ``inputs`` among them, and the items left over on cycles (in their given order).

    Kahn's algorithm: of the items whose inputs are all placed, the one of lowest ``priority`` comes next
    (without a priority: the one that became ready last, which keeps chains together).
    """
    items = list(items)
    waiting = {item: 0 for item in items}
    users: dict[Item, list[Item]] = {}
    for item in items:
        for need in inputs.get(item, ()):
            if need in waiting and need != item:
                waiting[item] += 1
                users.setdefault(need, []).append(item)
    if priority is None:
        ready: list[Any] = [item for item in items if not waiting[item]]
        take, put = ready.pop, ready.append
    else:
        ready = [(priority(item), index, item) for index, item in enumerate(items) if not waiting[item]]
        heapq.heapify(ready)
        number = {item: index for index, item in enumerate(items)}

        def take() -> Item:
            return heapq.heappop(ready)[2]

        def put(item: Item) -> None:
            heapq.heappush(ready, (priority(item), number[item], item))
    order: list[Item] = []
    while ready:
        item = take()
        order.append(item)
        for user in users.get(item, ()):
            waiting[user] -= 1
            if not waiting[user]:
                put(user)
    placed = set(order)
    return order, [item for item in items if item not in placed]


def stage_order(order: Sequence[Node]) -> list[Node]:
    """``order`` (a topological order) regrouped so that every stage is listed in one piece.

    The reading order visits whatever the output needs first, so it hops between stages (an LSTM step's output
    gate, then its forget gate, then a weight, then the cell state...). A hand derivation goes stage by stage:
    the inputs and parameters (leaves outside any stage) first, then each stage after the stages it uses, in
    computation order (independent stages as they were entered, see `autograd.core.entered`: an LSTM step's
    gates i, f, g, o; nested stages stay together: everything under "t=1" before "t=2" where the dependencies
    allow), each stage's nodes in ``order``. Where stages feed one another both
    ways no such listing exists, and ``order`` is kept; a graph without stages keeps it too.
    """
    if not any(node.stage for node in order):
        return list(order)
    first: dict[tuple[str, ...], int] = {}  # every stage path and prefix, numbered in order of appearance
    for node in order:
        for depth in range(1, len(node.stage) + 1):
            first.setdefault(node.stage[:depth], len(first))

    def seniority(stage: tuple[str, ...]) -> tuple[tuple[float, int], ...]:
        # when each level was entered (unrecorded: after the recorded ones), then first appearance
        return tuple((_entered(stage[:depth]), first[stage[:depth]]) for depth in range(1, len(stage) + 1))

    uses: dict[tuple[str, ...], set[tuple[str, ...]]] = {}  # stage -> the stages it takes values from
    for node in order:
        if not is_given(node):
            uses.setdefault(node.stage, set()).update(
                parent.stage for parent in node.parents if not is_given(parent) and parent.stage != node.stage)
    stages, cyclic = topological_sort(uses, uses, seniority)
    if cyclic:
        return list(order)
    rank = {stage: i for i, stage in enumerate(stages)}
    position = {node: i for i, node in enumerate(order)}
    return sorted(order, key=lambda node: (-1 if is_given(node) else rank[node.stage], position[node]))


def is_given(node: Node) -> bool:
    """An input or parameter outside any stage: listed before every stage."""
    return node.op is None and not node.stage


def _entered(path: tuple[str, ...]) -> float:
    order = entry_order(path)
    return math.inf if order is None else order
