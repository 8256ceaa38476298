"""User-supplied text (predictor names, parameters, categories, titles, test-set
names), made safe for each place the harness writes it.

One function per medium, and every writer of that medium uses it:

- ``markdown_text`` / ``markdown_code``: a cell or a heading of LEADERBOARD.md and
  the README block. No ``|`` or line break can end a cell or a row, no HTML passes
  through (``<img onerror=...>`` is text), no README marker can appear.
- ``terminal``: anything printed to a terminal (``bench list``, ``show``,
  ``compare``): control characters (escape codes that retitle the terminal or clear
  the screen, line breaks that split a table row, bidirectional overrides) are
  shown as ``\\x1b``-style escapes instead of acting.
- ``csv_cell``: a text cell of leaderboard.csv that a spreadsheet would run as a
  formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage return first) gets a
  leading apostrophe (OWASP's advice).
- ``file_stem``: a file name that no two names share (charts), the plain slug
  when that is lossless.

``check_name`` is what ``bench.registry`` (and ``bench.evaluate``) ask of a
predictor's name: one line of visible text, no control characters.
"""

from __future__ import annotations

import hashlib
import html
import re

from bench.errors import BenchError

# C0 and C1 controls, DEL, line and paragraph separators, and the invisible
# direction marks and overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def control_characters(text: str) -> list[str]:
    """The control characters in ``text``, as they would be shown (``\\n``, ``\\x1b``)."""
    return [_shown(m) for m in _CONTROL.finditer(text)]


def check_name(name: object, what: str = "predictor name") -> str:
    """``name`` when it is a usable name: a non-empty string without control
    characters or surrounding spaces; else a BenchError saying what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise BenchError(f"{what} must be a non-empty string, not {name!r}")
    found = control_characters(name)
    if found:
        raise BenchError(f"{what} {visible(name)!r} holds control characters "
                         f"({', '.join(dict.fromkeys(found))}): a name is one line of "
                         "visible text")
    if name.strip() != name:
        raise BenchError(f"{what} {name!r} starts or ends with spaces")
    return name


def _shown(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` on one line with every control character written out as an escape."""
    return _CONTROL.sub(_shown, str(text))


def terminal(text: object) -> str:
    """``text`` safe to print to a terminal: escape codes are shown, never run."""
    return visible(str(text))


# Characters with a meaning inside a line of Markdown (emphasis, code, links and
# images, table cells, strike-through, a heading's closing #s, math), backslash-escaped.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#!$])")


def markdown_text(text: object) -> str:
    """``text`` as literal Markdown text (a table cell, a heading, alt text): one line,
    HTML characters as entities, Markdown punctuation backslash-escaped (``\\|`` keeps
    a table cell whole)."""
    escaped = html.escape(visible(str(text)), quote=False)  # & < > -> entities
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", escaped)


_PLAIN_CODE = re.compile(r"[^`|<>&\\]*")


def markdown_code(text: object) -> str:
    """``text`` shown as code: a backtick span when nothing in it can break out, else an
    HTML ``<code>`` element around ``markdown_text`` (Markdown parses what lies between
    HTML tags: ``\\|`` keeps a table cell whole, ``&lt;`` leaves no HTML and no README
    marker)."""
    shown = visible(str(text))
    if shown and _PLAIN_CODE.fullmatch(shown) and shown.strip() == shown:
        return f"`{shown}`"
    return f"<code>{markdown_text(shown)}</code>"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A leaderboard.csv cell: text a spreadsheet would evaluate gets a leading ``'``;
    numbers and empty cells as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


_LOSSLESS = re.compile(r"[a-z0-9][a-z0-9.:-]*")


def file_stem(name: str) -> str:
    """A file name for ``name`` that no other name gets, on case-insensitive file systems
    too. A lower-case name of letters, digits, ``.``, ``-`` and ``:`` keeps its look
    (``reference:gpt-4o`` -> ``reference_gpt-4o``: reversible, as such names hold no
    ``_``); any other gets its cleaned form plus ``--`` and a hash of the name (``a/b``
    and ``a b`` both clean to ``a_b``, and differ by the hash). Plain stems never hold
    ``--``, so the two kinds never meet."""
    if _LOSSLESS.fullmatch(name) and "--" not in name:
        return name.replace(":", "_")
    cleaned = re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_.-").lower()[:60] or "name"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{cleaned}--{digest}"
