"""The one exception type of the dataset layer."""


class DataError(RuntimeError):
    """A dataset could not be built: bad parameters, a failed download, a checksum mismatch.

    The message always says what went wrong, which file / source it concerns, and what to do.
    """
