"""One scrub for every text that leaves the package: secrets cut out in every spelling.

A server or proxy may echo a request back (in an error body, or in a broken header that
aiohttp then quotes in its exception text), and with it the API key or secret key, in
whatever spelling the echo used. :class:`Scrubber` matches each secret with every
character in any of these spellings, mixed freely:

- raw; ``+`` for a space;
- percent-escaped, hex in upper or lower case, once (form encoding) or twice (``%252B``);
- JSON-escaped: ``\\u00e9`` (either case, surrogate pairs past U+FFFF), ``\\/``, ``\\"``;
- Python bytes reprs (``\\xc3\\xa9``, as aiohttp quotes a raw header line), also
  inside another repr (backslashes doubled);
- HTML character references (``&#43;``, ``&#x2b;``).

Scrub the whole text first, then cut it: a secret cut in two would escape the match.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "Scrubber"]

#: What a secret found in a text is replaced with.
REDACTED = "[redacted]"
# One backslash, or several: a repr of a text holding an escape doubles it (aiohttp's
# errors quote a bytes repr inside a str repr).
_BACKSLASH = r"\\{1,4}"
# The longest spelling of one character above: four UTF-8 bytes, each as four
# backslashes, "x" and two hex digits.
_SPELLING_MAX = 4 * len(r"\\\\xHH")


def _hex(value: int, width: int) -> str:
    """``value`` in hex, matching either case."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{value:0{width}x}")


def _char(c: str) -> str:
    """A regex for one character of a secret, in any spelling."""
    code = ord(c)
    data = c.encode("utf-8", "surrogatepass")
    options = [re.escape(c)]
    if c == " ":
        options.append(r"\+")
    options.append("".join("%" + _hex(b, 2) for b in data))
    options.append("".join("%25" + _hex(b, 2) for b in data))
    options.append("".join(_BACKSLASH + "x" + _hex(b, 2) for b in data))
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        options.append(_BACKSLASH + "u" + _hex(high, 4) + _BACKSLASH + "u" + _hex(low, 4))
    else:
        options.append(_BACKSLASH + "u" + _hex(code, 4))
    if c in '/"\\':
        options.append(_BACKSLASH + re.escape(c))
    options.append(f"&#{code};")
    options.append("&#[xX]" + _hex(code, 1) + ";")
    return "(?:" + "|".join(options) + ")"


class Scrubber:
    """``scrub(text)``: ``text`` with every spelling of every secret replaced by
    :data:`REDACTED`. Its repr shows nothing of the secrets."""

    __slots__ = ("_longest", "_pattern")

    def __init__(self, *secrets: str) -> None:
        # Longest first: a secret that contains another is cut out whole.
        wanted = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._longest = len(wanted[0]) if wanted else 0
        self._pattern = (
            re.compile("|".join("".join(_char(c) for c in s) for s in wanted)) if wanted else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def cut(self, text: str, limit: int) -> str:
        """The scrubbed text, at most ``limit`` characters. Only the start that can
        matter is scrubbed: a secret that starts before ``limit`` ends within the window
        (so a huge body costs no more than a short one)."""
        window = text[: limit + _SPELLING_MAX * self._longest]
        return self(window)[:limit]

    def __repr__(self) -> str:
        return "<Scrubber>"
