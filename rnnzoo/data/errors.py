"""`DataError`: input data that can't be used as asked, with a message saying how to fix it."""


class DataError(ValueError):
    """Bad input data (a missing, empty or binary file, a text too short, ...)."""
