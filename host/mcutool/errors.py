"""One error type for everything a user can get wrong; the CLI prints it on one line, exit 2."""


class McutoolError(Exception):
    """A user-facing error: the message says what went wrong, where, and what to do.

    `check` is the row of docs/flash-image.md §6 a rejected flash image failed (the C
    loader records the same number in mcu_model.check), 0 for every other error."""

    def __init__(self, *args, check: int = 0):
        super().__init__(*args)
        self.check = check


class UnsupportedOpError(McutoolError):
    def __init__(self, kind: str, index: int, why: str = "", supported=None):
        from .ops import SUPPORTED_OPS

        supported = supported if supported is not None else SUPPORTED_OPS
        detail = f": {why}" if why else ""
        super().__init__(
            f"op {index} ({kind}) is not supported{detail}; supported ops: {', '.join(sorted(supported))}"
        )
        self.kind = kind
        self.index = index
