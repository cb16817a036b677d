"""Energised topology of a radially operated grid, and the queries dispatch asks of it.

Tracing runs once, vectorised (scipy csgraph over a bus/element graph), and leaves behind
the *hierarchy*: the tree of switching devices, transformers and sources that every meter
hangs under. Queries then cost a couple of array look-ups:

- meter → transformer, feeder, source and its protective-device chain (cached per device);
- device → meters below it (one contiguous slice in the hierarchy's Euler order);
- lowest common protective device of a set of meters (interval containment);
- switching a normally closed device re-evaluates only that device's subtree.

De-energised parts of the grid stay attached below the open device that cut them off (the
trace reaches them through the fewest open devices), so "which device serves this meter"
has an answer even while it is dark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from gridmend.topology.elements import (
    BRANCH_KINDS,
    CRITICAL_CLASSES,
    HIERARCHY_KINDS,
    KIND_CODES,
    PROTECTIVE_KINDS,
    SWITCHING_KINDS,
    Kind,
)
from gridmend.topology.grid import CLASS_INDEX, KIND_INDEX, Grid, GridValidationError

_OPEN_COST = 1.0e6  # crossing an open device costs more than any closed path


class SwitchingRefused(ValueError):
    """A switching operation that a radially operated grid cannot take."""


class Trace(NamedTuple):
    meter: str
    transformer: str | None
    feeder: str | None
    source: str
    devices: list[str]  # protective devices, nearest first

    def as_dict(self) -> dict[str, object]:
        return self._asdict()


@dataclass(frozen=True)
class SwitchResult:
    """What one switching operation changed."""

    element: str
    closed: bool
    deenergised: np.ndarray  # meter element indices that lost supply
    energised: np.ndarray  # meter element indices that regained supply
    retraced: bool  # True when the hierarchy itself changed shape (a tie was closed)


def _codes(kinds: frozenset[Kind] | set[Kind]) -> np.ndarray:
    return np.array(sorted(KIND_INDEX[k] for k in kinds), dtype=np.int8)


class Topology:
    """Energised topology over a :class:`Grid`, with current switch states."""

    def __init__(self, grid: Grid, closed: np.ndarray | None = None) -> None:
        self.grid = grid
        n = len(grid)
        self.closed = ~grid.normally_open.copy() if closed is None else closed.copy()
        self.version = 0
        kind = grid.kind
        self._is_branch = np.isin(kind, _codes(BRANCH_KINDS))
        self._is_switching = np.isin(kind, _codes(SWITCHING_KINDS))
        self._is_hierarchy = np.isin(kind, _codes(HIERARCHY_KINDS))
        self._is_protective = np.isin(kind, _codes(PROTECTIVE_KINDS))
        self._is_meter = kind == KIND_INDEX[Kind.METER]
        self.meters = np.flatnonzero(self._is_meter).astype(np.int64)
        # Critical customers (hospitals, water works …) by meter element index.
        assert grid.customer_class is not None
        self._is_critical = self._is_meter & np.isin(
            grid.customer_class,
            np.array([CLASS_INDEX[c] for c in CRITICAL_CLASSES], dtype=np.int8),
        )
        self._n = n
        self._retrace()

    # ------------------------------------------------------------------ tracing
    def _retrace(self) -> None:
        """Trace the whole grid from its sources (vectorised; O(grid))."""
        grid = self.grid
        n_bus = len(grid.bus_ids)
        n = self._n
        root = n_bus + n  # virtual super-source
        n_vertices = root + 1
        element = np.arange(n, dtype=np.int64)
        vertex = n_bus + element

        branch = np.flatnonzero(self._is_branch)
        sources = np.flatnonzero(grid.kind == KIND_INDEX[Kind.SOURCE])
        cost = np.where(self.closed[branch], 1.0, _OPEN_COST)
        rows = np.concatenate(
            [
                grid.terminal_a[branch],
                grid.terminal_b[branch],
                np.full(len(sources), root),
                grid.terminal_a[sources],
            ]
        ).astype(np.int64)
        cols = np.concatenate(
            [vertex[branch], vertex[branch], vertex[sources], vertex[sources]]
        ).astype(np.int64)
        weights = np.concatenate([cost, cost, np.ones(2 * len(sources))])
        graph = sparse.coo_matrix((weights, (rows, cols)), shape=(n_vertices, n_vertices)).tocsr()
        dist, pred = csgraph.dijkstra(graph, directed=False, indices=root, return_predecessors=True)
        pred = pred.astype(np.int64)
        reached = np.isfinite(dist)

        problems: list[str] = []
        # Meters and transformers with no path to a source, even through open devices.
        meter_bus = grid.terminal_a[self.meters]
        for m in self.meters[~reached[meter_bus]]:
            problems.append(f"{grid.element_ids[m]}: meter has no path to a source")
        for e in np.flatnonzero(self._is_hierarchy & ~reached[vertex]):
            if grid.kind[e] != KIND_INDEX[Kind.SOURCE]:
                problems.append(f"{grid.element_ids[e]}: element has no path to a source")
        # Loops among closed elements: a closed branch the trace did not use.
        closed_branch = branch[self.closed[branch]]
        a = grid.terminal_a[closed_branch]
        b = grid.terminal_b[closed_branch]
        vb = vertex[closed_branch]
        used = (pred[vb] == a) & (pred[b] == vb) | (pred[vb] == b) & (pred[a] == vb)
        loop_closing = closed_branch[~used & reached[vb]]
        for e in loop_closing[:20]:
            problems.append(self._describe_loop(int(e), pred, n_bus))
        if len(loop_closing) > 20:
            problems.append(f"… {len(loop_closing) - 20} more loop-closing elements")
        if problems:
            raise GridValidationError(problems, grid.name)

        self._pred = pred
        self._reached = reached
        self._build_hierarchy(pred, n_bus, root)
        self.version += 1

    def _describe_loop(self, element: int, pred: np.ndarray, n_bus: int) -> str:
        """Name the elements on the loop that ``element`` closes."""
        grid = self.grid

        def path(v: int) -> list[int]:
            out = [v]
            while pred[v] >= 0 and len(out) < 100_000:
                v = int(pred[v])
                out.append(v)
            return out

        pa = path(int(grid.terminal_a[element]))
        pb = path(int(grid.terminal_b[element]))
        on_b = set(pb)
        cut = next((i for i, v in enumerate(pa) if v in on_b), len(pa) - 1)
        joint = pa[cut]
        cycle = pa[: cut + 1] + pb[: pb.index(joint)][::-1]
        names = [grid.element_ids[v - n_bus] for v in cycle if n_bus <= v < n_bus + len(grid)]
        names.append(grid.element_ids[element])
        shown = ", ".join(dict.fromkeys(names))
        return (
            f"{grid.element_ids[element]}: closes a loop in the radially operated network ({shown})"
        )

    def _build_hierarchy(self, pred: np.ndarray, n_bus: int, root: int) -> None:
        grid = self.grid
        n = self._n
        n_vertices = len(pred)
        index = np.arange(n_vertices, dtype=np.int64)
        is_node = np.zeros(n_vertices, dtype=bool)
        is_node[n_bus : n_bus + n] = self._is_hierarchy
        is_node[root] = True
        up = np.where(pred >= 0, pred, index)
        # Nearest hierarchy vertex at or above every vertex (pointer jumping, O(V log depth)).
        nearest = np.where(is_node, index, up)
        while True:
            nxt = nearest[nearest]
            if np.array_equal(nxt, nearest):
                break
            nearest = nxt

        nodes = np.flatnonzero(self._is_hierarchy)  # element indices
        node_vertex = n_bus + nodes
        parent_vertex = nearest[up[node_vertex]]
        parent = np.where(parent_vertex == root, -1, parent_vertex - n_bus)
        # Node-level tree in element indices.
        self._node_parent = np.full(n, -1, dtype=np.int64)
        self._node_parent[nodes] = parent
        self._nodes = nodes
        # Meter → nearest hierarchy element (its transformer, an LV fuse, …).
        meter_bus = grid.terminal_a[self.meters]
        self._meter_node_vertex = nearest[meter_bus]
        self.meter_node = np.full(n, -1, dtype=np.int64)
        self.meter_node[self.meters] = self._meter_node_vertex - n_bus
        # Every element → the hierarchy element at or above it (a line → the device feeding it).
        above = nearest[np.arange(n_bus, n_bus + n)]
        self._element_node = np.where(above == root, -1, above - n_bus)
        self._element_node[self.meters] = self.meter_node[self.meters]

        # Euler tour of the node tree (iterative DFS; the node tree is small).
        children: dict[int, list[int]] = {}
        roots: list[int] = []
        for node, par in zip(nodes.tolist(), parent.tolist(), strict=True):
            if par < 0:
                roots.append(node)
            else:
                children.setdefault(par, []).append(node)
        self._children = children
        tin = np.full(n, -1, dtype=np.int64)
        tout = np.full(n, -1, dtype=np.int64)
        order: list[int] = []
        clock = 0
        for r in roots:
            stack = [(r, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    tout[node] = clock
                    continue
                tin[node] = clock
                clock += 1
                order.append(node)
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(children.get(node, ())))
        self._tin = tin
        self._tout = tout
        self._node_order = np.asarray(order, dtype=np.int64)
        # Meters sorted by the Euler position of their node: "meters below" is a slice.
        meter_pos = tin[self.meter_node[self.meters]]
        sort = np.argsort(meter_pos, kind="stable")
        self._meters_sorted = self.meters[sort]
        self._meter_pos_sorted = meter_pos[sort]

        # Per-node derived facts, in Euler (pre-)order so parents come first.
        kind = grid.kind
        transformer = np.full(n, -1, dtype=np.int64)
        source = np.full(n, -1, dtype=np.int64)
        feeder = np.full(n, -1, dtype=np.int64)
        t_code = KIND_INDEX[Kind.TRANSFORMER]
        s_code = KIND_INDEX[Kind.SOURCE]
        par = self._node_parent
        for node in order:
            p = par[node]
            k = kind[node]
            if p < 0:
                source[node] = node if k == s_code else -1
                feeder[node] = -1
                transformer[node] = node if k == t_code else -1
                continue
            source[node] = source[p]
            transformer[node] = node if k == t_code else transformer[p]
            if kind[p] == s_code:
                feeder[node] = node  # the first device below a source heads a feeder
            else:
                feeder[node] = feeder[p]
        self._node_transformer = transformer
        self._node_source = source
        self._node_feeder = feeder
        self._chain_cache: dict[int, tuple[int, ...]] = {}
        self._protective_cache: dict[int, tuple[int, ...]] = {}
        self._refresh_energised(self._node_order)
        self._subtree_meter_count = self._count_meters_below()

    def _count_meters_below(self) -> np.ndarray:
        lo = np.searchsorted(self._meter_pos_sorted, self._tin[self._nodes], side="left")
        hi = np.searchsorted(self._meter_pos_sorted, self._tout[self._nodes], side="left")
        counts = np.zeros(self._n, dtype=np.int64)
        counts[self._nodes] = hi - lo
        return counts

    def _refresh_energised(self, nodes_in_preorder: np.ndarray) -> None:
        """Recompute node energisation for nodes given parents-first."""
        if not hasattr(self, "_node_energised"):
            self._node_energised = np.zeros(self._n, dtype=bool)
        energised = self._node_energised
        closed = self.closed
        par = self._node_parent
        branch = self._is_branch
        for node in nodes_in_preorder.tolist():
            p = par[node]
            own = closed[node] or not branch[node]
            energised[node] = own and (p < 0 or energised[p])

    # ------------------------------------------------------------------ lookups
    def element_index(self, element_id: str) -> int:
        try:
            return self.grid.index[element_id]
        except KeyError:
            raise KeyError(f"unknown element {element_id!r}") from None

    def meter_index(self, meter_id: str) -> int:
        i = self.element_index(meter_id)
        if not self._is_meter[i]:
            raise KeyError(f"{meter_id!r} is a {self.grid.kind_of(i)}, not a meter")
        return i

    def is_meter(self, element: int) -> bool:
        return bool(self._is_meter[element])

    def kind(self, element: int) -> Kind:
        return KIND_CODES[self.grid.kind[element]]

    def chain(self, node: int) -> tuple[int, ...]:
        """Hierarchy elements from ``node`` up to its source, nearest first (cached)."""
        cached = self._chain_cache.get(node)
        if cached is not None:
            return cached
        parent = int(self._node_parent[node])
        chain = (node,) if parent < 0 else (node, *self.chain(parent))
        self._chain_cache[node] = chain
        return chain

    def protective_chain(self, node: int) -> tuple[int, ...]:
        """Protective devices from ``node`` up, nearest first (cached per node)."""
        cached = self._protective_cache.get(node)
        if cached is not None:
            return cached
        parent = int(self._node_parent[node])
        above = () if parent < 0 else self.protective_chain(parent)
        chain = (node, *above) if self._is_protective[node] else above
        self._protective_cache[node] = chain
        return chain

    def meter_devices(self, meter: int) -> tuple[int, ...]:
        """A meter's protective-device chain, nearest first: two array look-ups when warm."""
        return self.protective_chain(int(self.meter_node[meter]))

    def meter_chain(self, meter: int) -> tuple[int, ...]:
        """All hierarchy elements above a meter (devices, transformer, source), nearest first."""
        return self.chain(int(self.meter_node[meter]))

    def transformer_of(self, meter: int) -> int:
        return int(self._node_transformer[self.meter_node[meter]])

    def feeder_of(self, element: int) -> int:
        node = element if self._is_hierarchy[element] else int(self.meter_node[element])
        return int(self._node_feeder[node])

    def source_of(self, element: int) -> int:
        node = element if self._is_hierarchy[element] else int(self.meter_node[element])
        return int(self._node_source[node])

    def node_above(self, element: int) -> int:
        """The device, transformer or source at or above any element (a line → its feeding
        device): the device that operates when that element fails."""
        return int(self._element_node[element])

    def nodes_above(self, elements: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`node_above`."""
        return self._element_node[np.asarray(elements, dtype=np.int64)]

    @property
    def node_order(self) -> np.ndarray:
        """Hierarchy elements in Euler pre-order: every parent comes before its children."""
        return self._node_order

    @property
    def node_parents(self) -> np.ndarray:
        """Parent hierarchy element of every element index (-1 for sources and non-nodes)."""
        return self._node_parent

    @property
    def node_transformers(self) -> np.ndarray:
        """Transformer at or above every hierarchy element (-1 above transformers)."""
        return self._node_transformer

    def is_hierarchy(self, element: int) -> bool:
        """True for devices, transformers and sources: the elements meters hang under."""
        return bool(self._is_hierarchy[element])

    @property
    def customers_below_all(self) -> np.ndarray:
        """Customers below every element index (0 for elements outside the hierarchy)."""
        return self._subtree_meter_count

    def node_parent(self, node: int) -> int:
        return int(self._node_parent[node])

    def node_children(self, node: int) -> list[int]:
        return list(self._children.get(node, ()))

    def is_critical(self, meter: int) -> bool:
        return bool(self._is_critical[meter])

    def trace(self, meter_id: str) -> Trace:
        m = self.meter_index(meter_id)
        ids = self.grid.element_ids
        transformer = self.transformer_of(m)
        feeder = self.feeder_of(m)
        return Trace(
            meter=meter_id,
            transformer=ids[transformer] if transformer >= 0 else None,
            feeder=ids[feeder] if feeder >= 0 else None,
            source=ids[self.source_of(m)],
            devices=[ids[d] for d in self.meter_devices(m)],
        )

    # ------------------------------------------------------------------ subtrees
    def _require_node(self, element: int) -> None:
        if not self._is_hierarchy[element]:
            raise KeyError(
                f"{self.grid.element_ids[element]!r} is a {self.kind(element)}: only devices, "
                "transformers and sources have meters below them"
            )

    def meters_below(self, element: int) -> np.ndarray:
        """Meter element indices below a device, transformer or source (structural)."""
        self._require_node(element)
        lo, hi = np.searchsorted(
            self._meter_pos_sorted, [self._tin[element], self._tout[element]], side="left"
        )
        return self._meters_sorted[lo:hi]

    def customers_below(self, element: int) -> int:
        self._require_node(element)
        return int(self._subtree_meter_count[element])

    def critical_below(self, element: int) -> np.ndarray:
        below = self.meters_below(element)
        return below[self._is_critical[below]]

    def nodes_below(self, element: int, kinds: frozenset[Kind] | None = None) -> np.ndarray:
        """Hierarchy elements strictly below ``element`` (optionally of some kinds)."""
        self._require_node(element)
        lo, hi = self._tin[element] + 1, self._tout[element]
        below = self._node_order[lo:hi]
        if kinds is not None:
            below = below[np.isin(self.grid.kind[below], _codes(kinds))]
        return below

    def is_below(self, node: int, ancestor: int) -> bool:
        """True when ``node`` (a hierarchy element) is at or below ``ancestor``."""
        return bool(self._tin[ancestor] <= self._tin[node] < self._tout[ancestor])

    def lowest_common_device(
        self, meters: np.ndarray | list[int], kinds: frozenset[Kind] = PROTECTIVE_KINDS
    ) -> int | None:
        """The nearest device of ``kinds`` that every given meter sits below, if any."""
        meters = np.asarray(meters, dtype=np.int64)
        if len(meters) == 0:
            return None
        pos = self._tin[self.meter_node[meters]]
        lo, hi = int(pos.min()), int(pos.max())
        codes = _codes(kinds)
        for node in self.meter_chain(int(meters[0])):
            if self.grid.kind[node] in codes and self._tin[node] <= lo and hi < self._tout[node]:
                return node
        return None

    # ------------------------------------------------------------------ energisation
    def energised_meters(self) -> np.ndarray:
        """Boolean mask over element indices: True where a meter has supply."""
        out = np.zeros(self._n, dtype=bool)
        out[self.meters] = self._node_energised[self.meter_node[self.meters]]
        return out

    def is_energised(self, element: int) -> bool:
        node = element if self._is_hierarchy[element] else int(self.meter_node[element])
        return bool(self._node_energised[node])

    def deenergised_by(self, open_devices: list[int] | np.ndarray) -> np.ndarray:
        """Meters that lose supply if these devices open (a what-if; state is unchanged)."""
        parts = [self.meters_below(int(d)) for d in open_devices]
        if not parts:
            return np.empty(0, dtype=np.int64)
        below = np.unique(np.concatenate(parts))
        return below[self._node_energised[self.meter_node[below]]]

    def switch(self, element_id: str, close: bool) -> SwitchResult:
        """Open or close a switching device and update the energised topology.

        A normally closed device re-evaluates only its own subtree. Closing a device whose
        far side hangs elsewhere in the hierarchy (a normally open tie) re-traces the grid;
        it is refused when both sides are live, which would parallel two feeders.
        """
        e = self.element_index(element_id)
        if not self._is_switching[e]:
            raise SwitchingRefused(f"{element_id} is a {self.kind(e)}, which cannot be switched")
        return self._set_closed(e, close)

    def set_in_service(self, element_id: str, in_service: bool) -> SwitchResult:
        """Take a device or transformer out of service (it failed) or back in (repaired).

        A failed transformer darkens its own area just as an operated fuse darkens what is
        below it; both re-evaluate only that subtree.
        """
        e = self.element_index(element_id)
        if not (self._is_hierarchy[e] and self._is_branch[e]):
            raise SwitchingRefused(
                f"{element_id} is a {self.kind(e)}: only devices and transformers go out of service"
            )
        return self._set_closed(e, in_service)

    def _set_closed(self, e: int, close: bool) -> SwitchResult:
        element_id = self.grid.element_ids[e]
        if bool(self.closed[e]) == close:
            empty = np.empty(0, dtype=np.int64)
            return SwitchResult(element_id, close, empty, empty, False)
        n_bus = len(self.grid.bus_ids)
        vertex = n_bus + e
        a, b = int(self.grid.terminal_a[e]), int(self.grid.terminal_b[e])
        feeds_own_subtree = self._pred[a] == vertex or self._pred[b] == vertex
        if close and not feeds_own_subtree:
            # A tie: its far side belongs to another branch of the hierarchy.
            if self._bus_energised(a) and self._bus_energised(b):
                raise SwitchingRefused(
                    f"closing {element_id} would parallel two live parts of the grid "
                    "(open a device on one side first)"
                )
            before = self.energised_meters()
            self.closed[e] = True
            try:
                self._retrace()
            except GridValidationError as err:
                self.closed[e] = False
                self._retrace()
                raise SwitchingRefused(f"closing {element_id} is refused: {err}") from err
            after = self.energised_meters()
            return SwitchResult(
                element=element_id,
                closed=close,
                deenergised=np.flatnonzero(before & ~after),
                energised=np.flatnonzero(after & ~before),
                retraced=True,
            )
        # A device that feeds its own subtree: only that subtree changes.
        below = self.meters_below(e)
        was = self._node_energised[self.meter_node[below]]
        self.closed[e] = close
        self._refresh_energised(self._node_order[self._tin[e] : self._tout[e]])
        self.version += 1
        now = self._node_energised[self.meter_node[below]]
        return SwitchResult(
            element=element_id,
            closed=close,
            deenergised=np.sort(below[was & ~now]),
            energised=np.sort(below[now & ~was]),
            retraced=False,
        )

    def _bus_energised(self, bus: int) -> bool:
        """A bus is live when the hierarchy element feeding it is live and the path is closed."""
        v = bus
        n_bus = len(self.grid.bus_ids)
        # Walk up to the first hierarchy vertex; any open branch on the way cuts supply.
        while True:
            p = int(self._pred[v])
            if p < 0:
                return False
            if p >= n_bus + self._n:
                return True  # the super-source: this bus holds a source
            e = p - n_bus
            if p >= n_bus:
                if self._is_branch[e] and not self.closed[e]:
                    return False
                if self._is_hierarchy[e]:
                    return bool(self._node_energised[e])
            v = p

    # ------------------------------------------------------------------ summaries
    def feeders(self) -> np.ndarray:
        """Elements that head a feeder (first hierarchy element below each source)."""
        return np.unique(self._node_feeder[self._nodes][self._node_feeder[self._nodes] >= 0])

    def transformers(self) -> np.ndarray:
        return self.grid.indices_of(Kind.TRANSFORMER)
