"""One error type for everything a user can get wrong; the CLI prints it on one line, exit 2."""


class McutoolError(Exception):
    """A user-facing error: the message says what went wrong, where, and what to do."""


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
