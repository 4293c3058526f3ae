"""The one exception type the CLI turns into a one-line error message."""


class Lenet5Error(Exception):
    """A problem with the user's input or environment, reported without a traceback."""
