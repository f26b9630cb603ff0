"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class CrackLightningError(Exception):
    """A problem with the user's input (a path, a file, a config value) that they can fix."""
