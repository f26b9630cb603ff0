"""A crack skeleton as a graph: spurs pruned, length measured along a smoothed path. Torch-free (numpy, scipy).

Nodes are the skeleton's pixels in row-major order; an edge joins 8-neighbours, except a diagonal whose two pixels
also share an orthogonal neighbour on the skeleton (the corner of a staircase: the path already runs through that
neighbour). Only the skeleton's pixels are held, never a map of the photo, so whole 50 MP photos fit.

- **Spurs.** Thinning a mask with ragged edges grows short side branches that are no part of the crack. An end
  branch (from an end pixel to a junction) shorter than the crack's width at its junction (``2 d``, ``d`` the
  junction's distance to the mask's edge) lies within the crack's own width: it is removed, and again until none is
  left (a few rounds). Real branches reach beyond the crack's width and stay.
- **Length.** A path of 1 and sqrt(2) px steps over-reads a crack that runs at other angles (8% at 22.5 degrees) and
  every one-pixel zigzag of a ragged skeleton. Each pixel between two neighbours moves to the mean of itself and
  its neighbours, ``SMOOTHING`` times (ends and junctions stay), and the length is the sum of the straight distances
  between neighbours: a straight crack of any angle measures its Euclidean length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

SMOOTHING = 4  # rounds of neighbour averaging: enough to straighten 1-px zigzags, too few to cut a real bend
PRUNING_ROUNDS = 3  # a spur of a spur is rare; each round is one pass over the graph
STEPS = ((0, 1), (1, -1), (1, 0), (1, 1))  # each neighbour pair once: right, and the three below


@dataclass
class SkeletonGraph:
    rows: np.ndarray  # (N,) int64, row-major order
    cols: np.ndarray
    first: np.ndarray  # (E,) node index of each edge's two ends
    second: np.ndarray

    @classmethod
    def of(cls, skeleton: np.ndarray, offset: int = 0) -> SkeletonGraph:
        """The graph of a boolean skeleton ``(H, W)``; ``offset`` is added to its row numbers."""
        skeleton = np.asarray(skeleton, dtype=bool)
        height, width = skeleton.shape
        rows, cols = np.nonzero(skeleton)
        flat = rows.astype(np.int64) * width + cols
        padded = np.pad(skeleton, 1)
        first, second = [], []
        for dr, dc in STEPS:
            inside = (rows + dr < height) & (cols + dc >= 0) & (cols + dc < width)
            if dr and dc:  # a staircase corner's diagonal is already walked through the orthogonal neighbour
                inside &= ~(padded[rows + 1 + dr, cols + 1] | padded[rows + 1, cols + 1 + dc])
            target = flat + dr * width + dc
            at = np.minimum(np.searchsorted(flat, target), max(len(flat) - 1, 0))
            hit = inside & (flat[at] == target) if len(flat) else inside
            first.append(np.nonzero(hit)[0])
            second.append(at[hit])
        return cls(rows.astype(np.int64) + offset, cols.astype(np.int64), np.concatenate(first), np.concatenate(second))

    def __len__(self) -> int:
        return len(self.rows)

    def degrees(self) -> np.ndarray:
        n = len(self)
        return np.bincount(self.first, minlength=n) + np.bincount(self.second, minlength=n)

    def steps(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Each edge's length: between pixel centres, or between ``positions`` ``(N, 2)``."""
        if positions is None:
            positions = np.stack([self.rows, self.cols], axis=1).astype(np.float64)
        return np.hypot(*(positions[self.first] - positions[self.second]).T)

    def kept(self, keep: np.ndarray) -> SkeletonGraph:
        """The graph of the nodes where ``keep`` is True (edges between two kept nodes)."""
        index = np.cumsum(keep) - 1
        edges = keep[self.first] & keep[self.second]
        return SkeletonGraph(self.rows[keep], self.cols[keep], index[self.first[edges]], index[self.second[edges]])


def spurs(graph: SkeletonGraph, depth: np.ndarray) -> np.ndarray:
    """Boolean ``(N,)``: the nodes of end branches shorter than the crack's width ``2 depth`` at their junction."""
    n = len(graph)
    degree = graph.degrees()
    junction = degree >= 3
    if not junction.any():
        return np.zeros(n, dtype=bool)
    inner = ~junction[graph.first] & ~junction[graph.second]
    links = sparse.coo_matrix((np.ones(inner.sum()), (graph.first[inner], graph.second[inner])), shape=(n, n))
    count, branch = connected_components(links, directed=False)
    steps = graph.steps()
    # float64 also where no edge is inner (a star of spurs): bincount of nothing is int64, whatever its weights
    length = np.bincount(branch[graph.first[inner]], weights=steps[inner], minlength=count).astype(np.float64)
    # Edges from a branch to a junction: their length counts, and the junction's depth is the crack's half-width there.
    touching = junction[graph.first] ^ junction[graph.second]
    end = np.where(junction[graph.first], graph.second, graph.first)[touching]
    hub = np.where(junction[graph.first], graph.first, graph.second)[touching]
    length += np.bincount(branch[end], weights=steps[touching], minlength=count)
    hubs = np.bincount(branch[end], minlength=count)
    hub_depth = np.zeros(count)
    np.maximum.at(hub_depth, branch[end], depth[hub])
    tips = np.bincount(branch[(degree <= 1) & ~junction], minlength=count)
    short = (tips >= 1) & (hubs == 1) & (length < 2 * hub_depth)
    return ~junction & short[branch]


def pruned(graph: SkeletonGraph, depth: np.ndarray, rounds: int = PRUNING_ROUNDS) -> np.ndarray:
    """Boolean ``(N,)``: the nodes left after removing spurs (see the module docstring), ``rounds`` times at most."""
    keep = np.ones(len(graph), dtype=bool)
    current, where = graph, np.arange(len(graph))
    for _ in range(rounds):
        drop = spurs(current, depth[where])
        if not drop.any():
            break
        keep[where[drop]] = False
        current, where = current.kept(~drop), where[~drop]
    return keep


def smoothed_steps(graph: SkeletonGraph, rounds: int = SMOOTHING) -> np.ndarray:
    """Each edge's length after ``rounds`` of moving each pixel with two neighbours to their mean with it."""
    if len(graph) == 0:
        return np.zeros(0)
    return graph.steps(smoothed_positions(graph, rounds))


def smoothed_positions(graph: SkeletonGraph, rounds: int = SMOOTHING) -> np.ndarray:
    """Each node's ``(row, column)`` ``(N, 2)`` after ``rounds`` of moving each pixel with two neighbours to their
    mean with it."""
    n = len(graph)
    if n == 0:
        return np.zeros((0, 2))
    degree = graph.degrees()
    links = sparse.coo_matrix((np.ones(len(graph.first)), (graph.first, graph.second)), shape=(n, n)).tocsr()
    links = links + links.T
    positions = np.stack([graph.rows, graph.cols], axis=1).astype(np.float64)
    free = (degree == 2)[:, None]
    for _ in range(rounds):
        positions = np.where(free, (positions + links @ positions) / (1 + degree)[:, None], positions)
    return positions
