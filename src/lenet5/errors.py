"""The one exception type the CLI turns into a one-line error message."""


class Lenet5Error(Exception):
    """A problem with the user's input or environment, reported without a traceback."""


class WriteError(Lenet5Error):
    """A file could not be written (disk full, read-only, no permission); it names the file."""


def write_error(path: object, exc: OSError) -> WriteError:
    return WriteError(f"cannot write {path}: {exc.strerror or exc}")
