"""Millimetres on a plane seen at an angle: a homography from photo pixels to the plane's millimetres (a marker card's,
:mod:`crack_lightning.scale.marker`), and cracks measured through it. NumPy only.

A photo of a wall taken at an angle has a different scale at each end, and a different one along and across a
crack. Here a crack is measured on the plane itself: its skeleton's smoothed path is mapped onto the plane and its
steps add up in millimetres; a width measured across the crack in the photo becomes the plane's width through the
homography's local affine map ``J`` there: a strip of width ``w`` along the photo direction ``t`` covers ``|det J| w``
of plane area per unit of its length ``|J t|``, so its width on the plane is ``|det J| w / |J t|``. A plain scale
``s`` gives ``s w``. This holds for cracks on the plane of the card only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Plane:
    """``homography`` ``(3, 3)``: photo pixel ``(x, y)`` (``x`` the column, ``y`` the row, pixel centres at whole
    numbers, as OpenCV counts them) to millimetres on the plane."""

    homography: np.ndarray

    def to_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Plane millimetres ``(N, 2)`` of photo points ``(x, y)``."""
        h = np.asarray(self.homography, dtype=np.float64)
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        return np.stack([(h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w], -1)

    def jacobian(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The local affine map ``(N, 2, 2)``, mm per px: ``[[du/dx, du/dy], [dv/dx, dv/dy]]``."""
        h = np.asarray(self.homography, dtype=np.float64)
        x, y = np.atleast_1d(np.asarray(x, dtype=np.float64)), np.atleast_1d(np.asarray(y, dtype=np.float64))
        w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        u, v = self.to_mm(x, y).T
        rows = [(h[0, 0] - u * h[2, 0]) / w, (h[0, 1] - u * h[2, 1]) / w]
        rows += [(h[1, 0] - v * h[2, 0]) / w, (h[1, 1] - v * h[2, 1]) / w]
        return np.stack(rows, -1).reshape(-1, 2, 2)

    def mm_per_px(self, x: float, y: float) -> float:
        """The scale at photo point ``(x, y)``: the square root of the area one pixel covers on the plane."""
        return float(np.sqrt(abs(np.linalg.det(self.jacobian(x, y)[0]))))

    def widths_mm(
        self, x: np.ndarray, y: np.ndarray, tangent_x: np.ndarray, tangent_y: np.ndarray, widths_px: np.ndarray
    ) -> np.ndarray:
        """Widths on the plane of widths ``widths_px`` measured across a crack that runs along the photo direction
        ``(tangent_x, tangent_y)`` at ``(x, y)`` (see the module docstring)."""
        jac = self.jacobian(x, y)
        along = np.hypot(
            jac[:, 0, 0] * tangent_x + jac[:, 0, 1] * tangent_y, jac[:, 1, 0] * tangent_x + jac[:, 1, 1] * tangent_y
        )
        return np.abs(np.linalg.det(jac)) * np.asarray(widths_px) / np.maximum(along, 1e-12)


def crack_millimetres(
    plane: Plane,
    rows: np.ndarray,
    cols: np.ndarray,
    positions: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    owners: np.ndarray,
    widths_px: np.ndarray,
    normal_y: np.ndarray,
    normal_x: np.ndarray,
    bins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(length, mean width, max width)`` in mm of each crack ``0..bins-1`` through ``plane``: the skeleton nodes
    ``(rows, cols)`` of crack ``owners``, their smoothed ``positions`` ``(N, 2)`` (row, column), the edges
    ``(first, second)`` between them, and each node's width across the crack along the normal ``(normal_y,
    normal_x)``."""
    on_plane = plane.to_mm(positions[:, 1], positions[:, 0])
    steps = np.hypot(*(on_plane[first] - on_plane[second]).T)
    lengths = np.bincount(owners[first], weights=steps, minlength=bins)
    # the crack runs across its normal: tangent (x, y) = (-normal_y, normal_x)
    widths = plane.widths_mm(cols, rows, -normal_y, normal_x, widths_px) if len(rows) else np.zeros(0)
    points = np.bincount(owners, minlength=bins)
    means = np.bincount(owners, weights=widths, minlength=bins) / np.maximum(points, 1)
    maxima = np.zeros(bins)
    np.maximum.at(maxima, owners, widths)
    return lengths, means, maxima
