"""The marker card in a photo: OpenCV's ArUco detector with sub-pixel corners, the card's plane from the marker's
four corners (a homography: photo pixels to millimetres on the card's plane), and why a marker is not used.

A marker is not used when it is too small (its corners then fix the scale to worse than about 1%), cut off at the
photo's edge, or blurred (its edge takes more than ``MAX_EDGE_PX`` to go from black to white); two usable markers
that disagree on the scale by more than ``MAX_DISAGREEMENT`` are both left unused (a card printed at another size,
or the cards on different surfaces).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from crack_lightning.measure.plane import Plane
from crack_lightning.scale.card import DICTIONARY, MODULES, size_of_number

MIN_SIDE_PX = 50  # corners found to a fifth of a pixel fix the scale to 0.4% at 50 px, worse below
MAX_EDGE_PX = 5.0  # 10-90% rise of the marker's edge: a sharp photo's is 1-3 px; a Gaussian blur of sigma 2 is 5
EDGE_PX = 3  # a corner this close to the photo's edge (or beyond it): the marker is cut off
MAX_DISAGREEMENT = 0.05
PAD = 32  # white around the photo while detecting, so that a marker cut by the edge still shows as a square
DETECT_SIDE = 3000  # px: a longer photo is searched in a copy this long (a whole 51 MP one: 5 s and 780 MB more)


@dataclass(frozen=True, eq=False)
class Marker:
    """A marker found in a photo: its number, its corners ``(4, 2)`` in photo pixels (``x, y``; top left first,
    clockwise as printed), its side in mm, and ``problem``: why it is not used ("" when it is)."""

    number: int
    corners: np.ndarray
    size_mm: float
    problem: str = ""

    @property
    def plane(self) -> Plane:
        """The card's plane: photo pixels to mm from the marker's top left corner."""
        import cv2

        s = self.size_mm
        square = np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float32)
        return Plane(cv2.getPerspectiveTransform(self.corners.astype(np.float32), square).astype(np.float64))

    @property
    def side_px(self) -> float:
        """The shortest of its four sides in the photo, px."""
        return float(min(np.hypot(*(self.corners - np.roll(self.corners, -1, axis=0)).T)))

    @property
    def centre(self) -> tuple[float, float]:
        x, y = self.corners.mean(axis=0)
        return float(x), float(y)


@dataclass(frozen=True, eq=False)
class MarkerScale:
    """What the markers of a photo give: the plane of the marker used (None when none is), its scale at that
    marker's centre, every marker found, and why the others are not used."""

    plane: Plane | None = None
    mm_per_px: float | None = None
    markers: tuple[Marker, ...] = field(default_factory=tuple)
    note: str = ""


def detector():
    import cv2

    parameters = cv2.aruco.DetectorParameters()
    parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, DICTIONARY))
    return cv2.aruco.ArucoDetector(dictionary, parameters)


def grey(image: np.ndarray) -> np.ndarray:
    """``uint8`` grey of an ``(H, W, 3)`` RGB or ``(H, W)`` image."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.uint8, copy=False)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3], np.uint8), cv2.COLOR_RGB2GRAY)


def edge_rise(photo: np.ndarray, corners: np.ndarray, samples: int = 12) -> float:
    """The median distance, in px, over which the marker's outer edge goes from 10% to 90% of the way from its
    black border to the white card around it, measured across the middle of each side."""
    centre = corners.mean(axis=0)
    cell = min(np.hypot(*(corners - np.roll(corners, -1, axis=0)).T)) / MODULES
    offsets = np.arange(-cell / 2, cell / 2 + 1e-9, 0.25)
    rises = []
    for start, end in zip(corners, np.roll(corners, -1, axis=0)):
        along = (end - start) / np.hypot(*(end - start))
        normal = np.array([-along[1], along[0]])
        if normal @ ((start + end) / 2 - centre) < 0:
            normal = -normal  # outward
        for t in np.linspace(0.3, 0.7, samples):
            points = start + t * (end - start) + offsets[:, None] * normal
            profile = ndimage.map_coordinates(photo, [points[:, 1], points[:, 0]], order=1, mode="nearest")
            low, high = profile[: len(profile) // 4].mean(), profile[-(len(profile) // 4) :].mean()
            if high - low < 20:  # no contrast to read an edge from
                continue
            rising = np.maximum.accumulate((profile - low) / (high - low))
            rises.append(np.interp(0.9, rising, offsets) - np.interp(0.1, rising, offsets))
    return float(np.median(rises)) if rises else float("inf")


def refined(image: np.ndarray, corners: np.ndarray, window: int) -> np.ndarray:
    """``corners`` found in a smaller copy, refined in the grey photo ``image`` itself (a crop around each)."""
    import cv2

    height, width = image.shape[:2]
    out = corners.copy()
    for i, (x, y) in enumerate(corners):
        left, top = int(round(x)) - window - 2, int(round(y)) - window - 2
        right, bottom = int(round(x)) + window + 3, int(round(y)) + window + 3
        if left < 0 or top < 0 or right > width or bottom > height:
            continue  # at the photo's edge: the marker is cut off, and said to be
        point = np.array([[[x - left, y - top]]], np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.01)
        cv2.cornerSubPix(
            np.ascontiguousarray(image[top:bottom, left:right]), point, (window, window), (-1, -1), criteria
        )
        out[i] = point.reshape(2) + (left, top)
    return out


def find_markers(image: np.ndarray, marker_mm: float | None = None) -> list[Marker]:
    """Every card marker in ``image`` (``uint8`` RGB or grey), each with its ``problem`` ("" when usable).
    ``marker_mm``: every marker's side, when it is not the size its number says (a card printed scaled). A photo
    longer than ``DETECT_SIDE`` is searched in a smaller copy, the corners refined in the photo itself."""
    import cv2

    height, width = image.shape[:2]
    small = whole = grey(image)
    if max(height, width) > DETECT_SIDE:
        factor = DETECT_SIDE / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(whole, size, interpolation=cv2.INTER_AREA)
    fx, fy = width / small.shape[1], height / small.shape[0]
    padded = cv2.copyMakeBorder(small, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=255)
    found, numbers, _ = detector().detectMarkers(padded)
    markers = []
    for corners, number in zip(found, [] if numbers is None else numbers.ravel()):
        corners = corners.reshape(4, 2).astype(np.float64) - PAD
        if small is not whole:  # pixel centres of the copy to the photo's, then refined there
            corners = refined(whole, (corners + 0.5) * (fx, fy) - 0.5, max(5, int(np.ceil(2 * max(fx, fy)))))
        size = marker_mm or size_of_number(int(number))
        if size is None:
            continue  # another ArUco marker, not a card's
        marker = Marker(int(number), corners, size)
        x, y = corners.T
        if x.min() < EDGE_PX or y.min() < EDGE_PX or x.max() > width - 1 - EDGE_PX or y.max() > height - 1 - EDGE_PX:
            problem = "cut off at the photo's edge; take the photo with the whole card in it"
        elif marker.side_px < MIN_SIDE_PX:
            problem = (
                f"too small ({marker.side_px:.0f} px wide, under {MIN_SIDE_PX} px): its corners cannot fix the "
                "scale to 1%; take the photo closer or print a larger card"
            )
        else:
            # the marker and a cell around it, in grey: the edge's profile reaches half a cell outside
            reach = marker.side_px / MODULES + 2
            left, top = np.maximum(np.floor(corners.min(axis=0) - reach).astype(int), 0)
            right, bottom = np.ceil(corners.max(axis=0) + reach).astype(int) + 1
            crop = whole[top:bottom, left:right].astype(np.float32)
            rise = edge_rise(crop, corners - (left, top))
            problem = (
                ""
                if rise <= MAX_EDGE_PX
                else f"blurred (its edge takes {rise:.1f} px from black to white, over {MAX_EDGE_PX:g} px): "
                "focus on the surface and hold the camera still"
            )
        markers.append(Marker(marker.number, corners, size, problem))
    return markers


def disagreement(a: Marker, b: Marker) -> float:
    """How far apart two markers put the scale: each one's side measured on the other's plane, against its size
    (the larger relative difference of the two)."""
    worst = 0.0
    for one, other in ((a, b), (b, a)):
        on_plane = one.plane.to_mm(other.corners[:, 0], other.corners[:, 1])
        side = np.hypot(*(on_plane - np.roll(on_plane, -1, axis=0)).T).mean()
        worst = max(worst, abs(side / other.size_mm - 1))
    return float(worst)


def marker_scale(image: np.ndarray, marker_mm: float | None = None) -> MarkerScale:
    """The card's plane in ``image`` from its largest usable marker; none (with the reasons) when no marker is
    usable or two usable ones disagree by more than ``MAX_DISAGREEMENT``."""
    markers = tuple(find_markers(image, marker_mm))
    notes = [f"marker {m.number} {m.problem}" for m in markers if m.problem]
    usable = sorted((m for m in markers if not m.problem), key=lambda m: -m.side_px)
    for other in usable[1:]:
        apart = disagreement(usable[0], other)
        if apart > MAX_DISAGREEMENT:
            notes.append(
                f"markers {usable[0].number} and {other.number} disagree by {apart:.0%} (over "
                f"{MAX_DISAGREEMENT:.0%}: a card printed at another size, or not on one surface): neither used"
            )
            return MarkerScale(markers=markers, note="; ".join(notes))
    if not usable:
        return MarkerScale(markers=markers, note="; ".join(notes))
    plane = usable[0].plane
    return MarkerScale(plane, plane.mm_per_px(*usable[0].centre), markers, "; ".join(notes))
