"""``tiles``: labelled tiles from photos with crack masks, to adapt a model to a new surface."""

from __future__ import annotations

from typing import Optional

from crack_lightning.cli.options import CommandParser
from crack_lightning.results.tiling import GROUP_PATTERN
from crack_lightning.scanning.labelled_tiles import DEFAULT_CRACK_FRACTION, cut_tiles


def parser() -> CommandParser:
    p = CommandParser(
        "tiles",
        "Cut photos with pixel masks (255 = crack) into an ImageFolder of tiles: Positive/ when at least "
        "--crack_fraction of a tile's pixels are crack, Negative/ when none are; tiles in between are left out. "
        f"Tile names carry the photo's name: train with --data.group_pattern '{GROUP_PATTERN}'.",
    )
    p.add_argument("--photos", type=str, required=True, help="Folder of photos (searched recursively).")
    p.add_argument("--masks", type=str, required=True, help="Folder of masks: the photos' relative paths with .png.")
    p.add_argument("--output", type=str, required=True, help="Folder for Positive/ and Negative/.")
    p.add_argument("--tile", type=int, required=True, help="Tile side in photo pixels.")
    p.add_argument("--stride", type=Optional[int], default=None, help="Step between tiles (default: the tile).")
    p.add_argument(
        "--crack_fraction",
        type=float,
        default=DEFAULT_CRACK_FRACTION,
        help="Share of crack pixels that makes a crack tile.",
    )
    p.add_argument(
        "--context",
        type=float,
        default=0.0,
        help="Photo around each tile also written into its image, as a share of the tile side on each side, as scan --context shows it; the label stays the tile's.",
    )
    p.add_argument("--overwrite", type=bool, default=False, help="Write into an --output that holds tiles already.")
    return p


def run(argv: list[str]) -> None:
    o = parser().parse_args(argv)
    counts = cut_tiles(
        o.photos, o.masks, o.output, o.tile, o.stride, o.crack_fraction, o.context, overwrite=o.overwrite
    )
    print(
        f"Cut {counts['photos']} photos into {counts['Positive']} Positive and {counts['Negative']} Negative tiles in "
        f"{o.output} ({counts['left_out']} tiles with under {o.crack_fraction:.0%} crack pixels left out)."
    )
    print(f"Train on them with: --data.root {o.output} --data.group_pattern '{GROUP_PATTERN}'")
