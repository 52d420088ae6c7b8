"""The storage layer's errors, under :class:`plaza.errors.ConflictError` and
:class:`plaza.errors.StorageError`."""

from __future__ import annotations

from plaza.errors import ConflictError, StorageError


class IntegrityError(ConflictError):
    """A uniqueness or foreign-key constraint refused a write; nothing was written."""

    code = "Conflict"


class SchemaTooNewError(StorageError):
    """The database records a schema version of a store newer than this code knows.

    Newer code migrated it; running older code on it could misread or damage the data,
    so the store refuses to open.
    """

    code = "SchemaTooNew"


class MigrationFailedError(StorageError):
    """A schema migration failed; it was rolled back and its version is not recorded."""

    code = "MigrationFailed"
