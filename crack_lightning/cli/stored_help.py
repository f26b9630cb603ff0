"""``fit``, ``validate`` and ``test`` ``--help`` without torch: LightningCLI builds their help from the classes'
signatures, which takes importing torch, torchvision and Lightning (seconds); the text is stored in the package
instead, and a test checks it against LightningCLI's. After changing an option or its docstring:

    python -m crack_lightning.cli.stored_help      # writes crack_lightning/assets/help/*.txt
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HELP_DIR = Path(__file__).resolve().parents[1] / "assets" / "help"
COMMANDS = ("fit", "validate", "test")
LIVE = "CRACK_LIGHTNING_LIVE_HELP"  # set: LightningCLI prints the help itself
COLUMNS = "100"  # argparse wraps to the terminal's width: the stored text is wrapped at this one


def stored_help(argv: list[str]) -> str | None:
    """The stored help when ``argv`` is exactly ``COMMAND --help`` (or ``-h``) of a LightningCLI command."""
    if len(argv) != 2 or argv[0] not in COMMANDS or argv[1] not in ("--help", "-h") or os.environ.get(LIVE):
        return None
    path = HELP_DIR / f"{argv[0]}.txt"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def live_help(command: str) -> str:
    """What LightningCLI prints for ``command --help`` at the stored width."""
    # This package, whatever the working folder (another checkout may be installed in the environment)
    path = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, LIVE: "1", "COLUMNS": COLUMNS, "PYTHONWARNINGS": "ignore", "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "crack_lightning", command, "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main() -> None:
    HELP_DIR.mkdir(parents=True, exist_ok=True)
    for command in COMMANDS:
        (HELP_DIR / f"{command}.txt").write_text(live_help(command), encoding="utf-8")
        print(f"wrote {HELP_DIR / f'{command}.txt'}")


if __name__ == "__main__":
    main()
