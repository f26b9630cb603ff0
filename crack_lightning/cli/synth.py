"""``synth``: a synthetic crack data set (pictures and exact masks) drawn on photos of sound concrete."""

from __future__ import annotations

import os

from crack_lightning.cli.options import CommandParser
from crack_lightning.errors import CrackLightningError, OptionError


def parser() -> CommandParser:
    p = CommandParser(
        "synth",
        "Draw cracks with exact masks, and look-alikes without (formwork lines, joints, stains, shadows, hairs, "
        "twigs, paint), on photos of sound concrete: images/NAME.jpg and masks/NAME.png, the layout a segmenter "
        "trains on (fit --config configs/segment.yaml --data.root OUTPUT). The same options give the same files.",
    )
    p.add_argument("--backgrounds", type=str, nargs="+", required=True, help="Folders of photos of sound surfaces.")
    p.add_argument("--output", type=str, required=True, help="Folder for images/, masks/ and synth.json.")
    p.add_argument("--count", type=int, default=4000, help="Number of samples.")
    p.add_argument(
        "--seed", type=int, default=0, help="Seed: sample i depends only on the seed, i and the backgrounds."
    )
    p.add_argument("--size", type=int, default=384, help="Side of each square sample in pixels.")
    p.add_argument("--sound_share", type=float, default=0.15, help="Share of samples with look-alikes and no crack.")
    p.add_argument("--workers", type=int, default=0, help="Processes (0: one per CPU core).")
    return p


def run(argv: list[str]) -> None:
    from crack_lightning.synth.folder import write_dataset
    from crack_lightning.synth.sample import SampleSpec
    from crack_lightning.synth.surfaces import find_backgrounds

    o = parser().parse_args(argv)
    if o.size < 64:
        raise CrackLightningError(f"--size: {o.size}; pass 64 or more")
    if not 0 <= o.sound_share <= 1:
        raise CrackLightningError(f"--sound_share: {o.sound_share}; pass a share in [0, 1]")
    try:
        backgrounds = find_backgrounds(o.backgrounds)
        spec = SampleSpec(seed=o.seed, size=o.size, sound_share=o.sound_share)
        written = write_dataset(spec, backgrounds, o.output, o.count, o.workers or len(os.sched_getaffinity(0)))
    except OptionError:
        raise  # named as a field: cli.main names the flag
    except ValueError as err:
        raise CrackLightningError(str(err)) from err
    print(f"Wrote {written} samples to {o.output} ({len(backgrounds)} backgrounds, seed {o.seed}).")
