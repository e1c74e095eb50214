"""The launcher's one error type: its message says what went wrong and how to fix it."""


class LauncherError(RuntimeError):
    """Shown to the user as is, without a traceback."""
