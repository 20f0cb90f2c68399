"""The bare RQ workers' job in the worker bench: nothing, in a module that imports nothing."""


def noop() -> None:
    """Do nothing."""
