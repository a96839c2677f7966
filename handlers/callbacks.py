"""The callback-data codec, re-exported for handlers (it lives in ``models.callbacks``)."""

from models.callbacks import MAX_BYTES, BadCallback, CallbackCodec, CallbackData

__all__ = ["MAX_BYTES", "BadCallback", "CallbackCodec", "CallbackData"]
