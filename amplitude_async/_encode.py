"""Request bodies for ``POST /identify``: form-urlencoded (default) or multipart.

Each identification is encoded once (msgspec JSON, then percent-escaped for forms) and
its bytes cached on its group, so a batch's size is known exactly before it is sent and a
re-send costs no encoding. A body is the cached pieces joined.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import msgspec

__all__ = ["BatchEncoder", "form_escape"]

# RFC 3986 unreserved characters: never escaped.
_UNRESERVED: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
# Printable ASCII that must be escaped. '%' is escaped before all of them (so we never
# escape our own escapes) and ' ' after all of them (its '+' must not become '%2B').
_PRINTABLE_SPECIAL: Final = (
    *(bytes([b]) for b in range(0x21, 0x7F) if b not in _UNRESERVED and b != ord("%")),
    b" ",
)
_ESCAPE_OF: Final = {s: (b"+" if s == b" " else b"%%%02X" % s[0]) for s in _PRINTABLE_SPECIAL}
_PRINTABLE: Final = _UNRESERVED + b"".join(_PRINTABLE_SPECIAL) + b"%"
# Fallback for bytes outside printable ASCII (UTF-8, control characters).
_TABLE: Final = [
    chr(b) if b in _UNRESERVED else ("+" if b == 0x20 else f"%{b:02X}") for b in range(256)
]


def form_escape(data: bytes) -> bytes:
    """``application/x-www-form-urlencoded`` escaping, as ``urllib.parse.quote_plus``.

    A chain of ``bytes.replace`` passes (each in C) is about 4x faster than
    ``quote_plus`` on JSON; bytes outside printable ASCII take the translate path.
    """
    if data.translate(None, _PRINTABLE):
        return data.decode("latin-1").translate(_TABLE).encode("ascii")
    data = data.replace(b"%", b"%25")
    for special in _PRINTABLE_SPECIAL:
        if special in data:
            data = data.replace(special, _ESCAPE_OF[special])
    return data


class BatchEncoder:
    """Builds request bodies for one API key in one encoding ("form" or "multipart")."""

    __slots__ = ("_encode", "_form", "_prefix", "_sep", "_suffix", "content_type")

    def __init__(self, api_key: str, encoding: str) -> None:
        self._encode = msgspec.json.Encoder().encode
        self._form = encoding == "form"
        key = api_key.encode("utf-8")
        if self._form:
            self.content_type = "application/x-www-form-urlencoded"
            self._prefix = b"api_key=" + form_escape(key) + b"&identification=%5B"
            self._sep = b"%2C"
            self._suffix = b"%5D"
        else:
            boundary = secrets.token_hex(16)
            self.content_type = f"multipart/form-data; boundary={boundary}"
            b = boundary.encode("ascii")
            self._prefix = (
                b"--"
                + b
                + b'\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n'
                + key
                + b"\r\n--"
                + b
                + b'\r\nContent-Disposition: form-data; name="identification"\r\n'
                + b"Content-Type: application/json\r\n\r\n["
            )
            self._sep = b","
            self._suffix = b"]\r\n--" + b + b"--\r\n"

    def encode_item(self, wire: dict[str, Any]) -> bytes:
        """One identification, ready to be joined into a body."""
        raw = self._encode(wire)
        return form_escape(raw) if self._form else raw

    def overhead(self, items: int) -> int:
        """Bytes a body of ``items`` identifications has besides the identifications."""
        return len(self._prefix) + len(self._suffix) + len(self._sep) * max(items - 1, 0)

    def body(self, items: list[bytes]) -> bytes:
        return self._prefix + self._sep.join(items) + self._suffix

    def __repr__(self) -> str:
        return f"BatchEncoder(content_type={self.content_type.split(';')[0]!r})"
