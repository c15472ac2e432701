"""The errors yoloslim raises for its users; imports nothing, so every layer can raise them."""


class YoloslimError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it (one line)."""


class ExportMismatch(YoloslimError):
    """An export that does not compute what the model does; fp32_error: how far PyTorch fp32 itself is from float64
    on that input, in the check's units (nan when not measured), which tells an ill-conditioned model from a bad
    export."""

    def __init__(self, message: str, fp32_error: float = float("nan")):
        super().__init__(message)
        self.fp32_error = fp32_error
