"""A pg_dump (psql) script split into its statements."""

import re
from collections.abc import Iterator

_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$")
_SPECIAL = re.compile(r"[;'\"$]|--|/\*")  # where a statement's text can change meaning


def statements(dump: str) -> Iterator[str]:
    """The statements of a pg_dump (psql) script, each ending with its semicolon, without
    the comments and psql meta-commands (``\\restrict``...) between them.

    Semicolons, ``--`` and line starts inside quoted literals and identifiers, dollar-quoted
    bodies and comments belong to their statement: only what stands between statements is
    dropped.
    """
    i, n, start = 0, len(dump), None
    while i < n:
        c = dump[i]
        if start is None:  # between statements
            if c.isspace():
                i += 1
                continue
            if c == "\\" or dump.startswith("--", i):  # a meta-command or comment: one line
                i = _line_end(dump, i)
                continue
            if dump.startswith("/*", i):
                i = _comment_end(dump, i)
                continue
            start = i
        if c in "'\"":
            escapes = c == "'" and i > 0 and dump[i - 1] in "eE" and not _word(dump, i - 2)
            i = _quote_end(dump, i, escapes)
        elif dump.startswith("--", i):
            i = _line_end(dump, i)
        elif dump.startswith("/*", i):
            i = _comment_end(dump, i)
        elif c == "$" and not _word(dump, i - 1) and (tag := _DOLLAR_QUOTE.match(dump, i)):
            close = dump.find(tag.group(), tag.end())
            i = n if close == -1 else close + len(tag.group())
        elif c == ";":
            i += 1
            yield dump[start:i]
            start = None
        else:
            special = _SPECIAL.search(dump, i + 1)
            i = special.start() if special else n
    if start is not None and dump[start:].strip():
        yield dump[start:].rstrip()  # no final semicolon: PostgreSQL will judge it


def _word(text: str, i: int) -> bool:
    return i >= 0 and (text[i].isalnum() or text[i] in "_$")


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end == -1 else end + 1


def _comment_end(text: str, i: int) -> int:
    """End of the (nestable) block comment opening at ``i``."""
    depth = 0
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _quote_end(text: str, i: int, escapes: bool) -> int:
    """End of the literal or quoted identifier opening at ``i`` (a doubled quote stays
    inside; so does a backslash-escaped one in an E'' string)."""
    quote, i = text[i], i + 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if text.startswith(quote, i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(text)
