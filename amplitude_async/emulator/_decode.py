"""Fast, total decoding of request bodies: form-urlencoded and JSON.

The client sends ~100 KB form bodies holding 1,000 identifications, almost every JSON
character percent-encoded. ``urllib.parse.unquote_to_bytes`` loops in Python once per
``%`` (about 12 ms for 250 KB); here the escapes are decoded by ``binascii.a2b_qp``, a C
quoted-printable decoder, after turning ``%`` into ``=`` (about 0.6 ms). That is exact
only when the value has no raw ``=``, CR or LF and every ``%`` starts a valid escape;
a length check proves the latter, and anything else takes the slow, lenient path.

Every function here either returns or raises :class:`DecodeError`; nothing else, so a
garbage body becomes a 4xx and never a 500.
"""

from __future__ import annotations

import binascii
import urllib.parse
from typing import Any

import msgspec

__all__ = ["DecodeError", "decode_json", "parse_form", "percent_decode"]

_json_decoder = msgspec.json.Decoder()


class DecodeError(ValueError):
    """The body could not be decoded."""


def percent_decode(value: bytes) -> bytes:
    """Decode one form-urlencoded value (``+`` is a space), like ``unquote_to_bytes``."""
    value = value.replace(b"+", b" ")
    escapes = value.count(b"%")
    if not escapes:
        return value
    if b"=" not in value and b"\n" not in value and b"\r" not in value:
        decoded = binascii.a2b_qp(value.replace(b"%", b"="))
        # Each valid escape shrinks the value by exactly two bytes; an invalid one
        # (kept literally by a2b_qp, as "=" instead of "%") breaks the count.
        if len(decoded) == len(value) - 2 * escapes:
            return decoded
    return urllib.parse.unquote_to_bytes(value)


def parse_form(body: bytes | str) -> dict[str, str]:
    """Decode an ``application/x-www-form-urlencoded`` body; the first value of a name wins."""
    if isinstance(body, str):
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates from a str query string
            raise DecodeError("the form is not valid UTF-8") from exc
    out: dict[str, str] = {}
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        try:
            key = percent_decode(name).decode("utf-8")
            text = percent_decode(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("the form is not valid UTF-8") from exc
        out.setdefault(key, text)
    return out


def decode_json(data: bytes | str) -> Any:
    """Decode JSON text, raising :class:`DecodeError` for anything that is not JSON."""
    try:
        return _json_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeError) as exc:
        raise DecodeError(f"not valid JSON: {exc}") from exc
    except RecursionError:
        # msgspec recurses once per level: thousands of levels are bad input, a 4xx.
        raise DecodeError("not valid JSON: nested too deep") from None
