"""Tables that fit the terminal: no number, id or verdict is ever split across lines.

A table is shown whole when each column can be as wide as its longest word (cells then wrap
only at spaces); else without its optional columns, least useful first; else, when even that
is too wide, vertically, one block per row. Piped output has no width to fit: plain, unboxed
columns, never wrapped."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bench.show.tables import TableData, inert

BORDERS = 3  # a cell's padding (one space each side) and its left rule
INDENT = "  "


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def min_widths(table: TableData) -> list[int]:
    """Each column's narrowest width that splits no word (of its header or its cells)."""
    return [
        max(_longest_word(text) for text in [header, *(row[index] for row in table.rows)])
        for index, header in enumerate(table.headers)
    ]


def _without(table: TableData, dropped: set[str]) -> TableData:
    keep = [index for index, header in enumerate(table.headers) if header not in dropped]
    return TableData(
        table.title,
        [table.headers[i] for i in keep],
        [[row[i] for i in keep] for row in table.rows],
        table.show_header,
    )


def _fits(table: TableData, width: int) -> bool:
    return sum(min_widths(table)) + BORDERS * len(table.headers) + 1 <= width


def narrowed(table: TableData, width: int, optional: Sequence[str] = ()) -> TableData | None:
    """`table` whole or without optional columns (dropped in the order given, as few as
    needed) so that it fits `width`; None when even that does not."""
    dropped: set[str] = set()
    for header in [None, *optional]:
        if header is not None:
            dropped.add(header)
        narrower = _without(table, dropped)
        if _fits(narrower, width):
            return narrower
    return None


def made_inert(table: TableData) -> TableData:
    """`table` with every string from a file or an argument shown inert (tables.inert)."""
    return TableData(
        inert(table.title),
        [inert(header) for header in table.headers],
        [[inert(cell) for cell in row] for row in table.rows],
        table.show_header,
        table.optional,
    )


def fit(table: TableData, width: int, optional: Sequence[str] = ()) -> RenderableType:
    """`table` for a terminal `width` columns wide: boxed when it fits (see `narrowed`), else
    vertical; every cell inert."""
    table = made_inert(table)
    narrower = narrowed(table, width, optional)
    return vertical(table, width) if narrower is None else _boxed(narrower, width)


def column_widths(table: TableData, width: int) -> list[int]:
    """Each column as wide as its widest cell, the columns with most room to spare narrowed
    first, one character at a time, until the table fits (never below their longest word)."""
    widths = [
        max(cell_len(text) for text in [header, *(row[index] for row in table.rows)])
        for index, header in enumerate(table.headers)
    ]
    least = min_widths(table)
    excess = sum(widths) + BORDERS * len(widths) + 1 - width
    while excess > 0:
        spare = [w - m for w, m in zip(widths, least, strict=True)]
        widest = spare.index(max(spare))
        if spare[widest] == 0:
            break
        widths[widest] -= 1
        excess -= 1
    return widths


def _boxed(table: TableData, width: int) -> Table:
    rendered = Table(title=escape(table.title), show_header=table.show_header)
    for header, column_width in zip(table.headers, column_widths(table, width), strict=True):
        rendered.add_column(escape(header), width=column_width, overflow="fold")
    for row in table.rows:
        rendered.add_row(*map(escape, row))
    return rendered


# Stands for the space between a number and its % while lines are broken, so that "8.0 %"
# stays one figure: a control character, which inert text never holds.
GLUE = "\x00"


def wrapped_at_spaces(text: str, room: int) -> list[str]:
    """`text` in lines of at most `room` columns, broken at spaces but never between a number
    and its %; only a word longer than a whole line (a long baseline name) is broken too,
    after its hyphens."""
    glued = text.replace(" %", GLUE + "%")
    for after_hyphens in (False, True):
        wrapped = textwrap.wrap(glued, room, break_long_words=False, break_on_hyphens=after_hyphens)
        lines = [line.replace(GLUE, " ") for line in wrapped]
        if all(cell_len(line) <= room for line in lines):
            break
    return lines or ["-"]


def vertical(table: TableData, width: int) -> RenderableType:
    """One block per row: its first cell as a heading, then `header  value` lines, values
    wrapped at spaces (see wrapped_at_spaces)."""
    key_width = max(cell_len(header) for header in table.headers[1:]) if table.headers else 0
    room = max(20, width - len(INDENT) - key_width - 2)
    blocks: list[RenderableType] = [Text(table.title, style="italic")]
    for row in table.rows:
        lines = [Text(line, style="bold") for line in wrapped_at_spaces(row[0], width)]
        for header, value in zip(table.headers[1:], row[1:], strict=True):
            wrapped = wrapped_at_spaces(value, room)
            label = f"{INDENT}{header:<{key_width}}  "
            lines += [Text(label + wrapped[0])]
            lines += [Text(" " * len(label) + more) for more in wrapped[1:]]
        blocks += lines
    return Group(*blocks)


def to_plain(table: TableData) -> str:
    """Columns padded to their widest cell, two spaces apart, no rules, never wrapped; every
    cell inert."""
    table = made_inert(table)
    rows = [table.headers, *table.rows] if table.show_header else table.rows
    widths = [max(cell_len(row[i]) for row in rows) for i in range(len(table.headers))]
    lines = [table.title]
    for row in rows:
        padded = [cell + " " * (w - cell_len(cell)) for cell, w in zip(row, widths, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"
