"""Errors of the media helpers."""
from __future__ import annotations


class MediaReadError(ValueError):
    """A file that cannot be read as the expected kind of media (missing stream, undecodable data, no content)."""
