"""``marker``: the printable marker card that gives scan each photo's scale in millimetres."""

from __future__ import annotations

from crack_lightning.cli.options import CommandParser
from crack_lightning.scale.card import DEFAULT_DPI, DEFAULT_SIZE_MM, card_layout, marker_number, write_card


def parser() -> CommandParser:
    p = CommandParser(
        "marker",
        "Write the marker card: an ArUco marker whose number tells scan its size, a millimetre scale bar and the "
        "instruction, as a PDF page of the card's own size (print it at 100%) or a PNG. Lay it flat beside the crack "
        "in the photo: scan then measures in millimetres on the card's plane, also in a photo taken at an angle.",
    )
    p.add_argument("--output", type=str, required=True, help="The card's file: NAME.pdf or NAME.png.")
    p.add_argument(
        "--size_mm",
        type=int,
        default=DEFAULT_SIZE_MM,
        help="Side of the black square in mm: 10 to 250 in steps of 5; printed on the card, to check with a ruler.",
    )
    p.add_argument("--dpi", type=int, default=DEFAULT_DPI, help="Resolution of the drawing, pixels per inch.")
    p.add_argument("--overwrite", type=bool, default=False, help="Replace --output where it exists.")
    return p


def run(argv: list[str]) -> None:
    o = parser().parse_args(argv)
    number = marker_number(o.size_mm)
    path = write_card(o.output, o.size_mm, o.dpi, o.overwrite)
    layout = card_layout(o.size_mm)
    print(
        f"Wrote {path}: a card of {layout.width:.0f} x {layout.height:.0f} mm, marker no. {number}, {o.size_mm} mm wide. "
        "Print it at 100% (no fit to page) and check the square with a ruler; if it is not "
        f"{o.size_mm} mm, pass what it is to scan as --marker_mm."
    )
