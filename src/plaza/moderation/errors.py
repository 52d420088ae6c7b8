"""The moderation package's errors."""

from __future__ import annotations

from plaza.errors import PlazaError


class ModerationError(PlazaError):
    code = "ModerationError"
    status = 400


class DatasetError(ModerationError):
    code = "InvalidDataset"


class ModelFileError(ModerationError):
    code = "InvalidModelFile"


class MandateRefusedError(ModerationError):
    code = "MandateRefused"
    status = 403
