"""Tables a person reads at 80 columns, and plain tab-separated rows when the output is not a terminal.

A column a user copies (a scenario name, a run id, a key, a variable, a status) is never cut: when a
row does not fit, the table's other columns give way, in the order the caller names — shortened with
an ellipsis down to a width, or dropped. When even the copied columns do not fit, the line is longer
than the terminal and wraps; it is never cut. Piped output is ``gh``'s: one line per row, cells
separated by tabs, every column, no header, nothing shortened.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

GAP = 2  # spaces between columns
ELLIPSIS = "…"


def fit(columns: Sequence[str], rows: list[dict], width: int,
        give_way: Iterable[tuple[str, int]] = ()) -> dict[str, int]:
    """The width of each column shown: ``give_way`` lists (column, width) in the order columns yield;
    width 0 drops the column. A column that is never named keeps its natural width."""
    natural = {c: max([cell_len(c)] + [cell_len(r.get(c, "")) for r in rows]) for c in columns}
    widths = dict(natural)

    def excess() -> int:
        return sum(widths.values()) + GAP * (len(widths) - 1) - width

    for column, keep in give_way:
        if excess() <= 0:
            break
        if column not in widths:
            continue
        if keep == 0:
            del widths[column]
        else:
            widths[column] -= min(excess(), max(widths[column] - max(keep, cell_len(column)), 0))
    # Room left after a later step goes back: first to the columns shortened before it, then to a dropped
    # column that fits again whole (the last dropped first).
    for column, _ in reversed(list(give_way)):
        if column in widths and excess() < 0:
            widths[column] += min(-excess(), natural[column] - widths[column])
    for column, keep in reversed(list(give_way)):
        if keep == 0 and column not in widths and excess() + natural[column] + GAP <= 0:
            widths[column] = natural[column]
    return {c: widths[c] for c in columns if c in widths}


def cut(value: str, width: int) -> str:
    if cell_len(value) <= width:
        return value
    text = Text(value)
    text.truncate(width, overflow="ellipsis")
    return text.plain


def lines(columns: Sequence[str], rows: list[dict], width: int, give_way: Iterable[tuple[str, int]] = (),
          right: Sequence[str] = ()) -> list[str]:
    """The table as text lines: a header, a rule, one line per row."""
    widths = fit(columns, rows, width, give_way)

    def line(cells: dict) -> str:
        parts = []
        for c, w in widths.items():
            value = cut(str(cells.get(c, "")), w)
            pad = " " * (w - cell_len(value))
            parts.append(pad + value if c in right else value + pad)
        return (" " * GAP).join(parts).rstrip()

    total = sum(widths.values()) + GAP * (len(widths) - 1)
    return [line({c: c for c in widths}), "─" * total] + [line(r) for r in rows]


def tsv(columns: Sequence[str], rows: list[dict]) -> list[str]:
    """Every column of every row, tab-separated; tabs and line breaks inside a value become spaces."""
    def clean(value) -> str:
        return " ".join(str(value).replace("\t", " ").splitlines())

    return ["\t".join(clean(r.get(c, "")) for c in columns) for r in rows]


def write_rows(console: Console, texts: list[str]) -> None:
    """Lines as they are, tabs included (Rich's print would expand them to spaces)."""
    for text in texts:
        console.file.write(text + "\n")
    console.file.flush()


def print_table(console: Console, columns: Sequence[str], rows: list[dict], *,
                give_way: Iterable[tuple[str, int]] = (), right: Sequence[str] = (), title: str | None = None,
                plain: bool | None = None) -> list[str]:
    """A table at the console's width, or tab-separated rows when the console is not a terminal (``plain``
    decides when given). Returns the columns that were shortened or dropped."""
    if plain if plain is not None else not console.is_terminal:
        write_rows(console, tsv(columns, rows))
        return []
    if title:
        console.print(title, markup=False, highlight=False, soft_wrap=True)
    header, rule, *body = lines(columns, rows, console.width, give_way, right)
    console.print(Text(header, style="bold"), soft_wrap=True)
    console.print(rule, highlight=False, soft_wrap=True)
    for text in body:
        console.print(text, markup=False, highlight=False, soft_wrap=True, emoji=False)
    widths = fit(columns, rows, console.width, give_way)
    return [c for c in columns if c not in widths or any(cell_len(str(r.get(c, ""))) > widths[c] for r in rows)]
