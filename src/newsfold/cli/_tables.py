"""Tables for people that fit the terminal they are printed on.

rich shrinks a table that is too wide by squeezing every column alike: words split
mid-word, a ``no_wrap`` column is cut at the right border, and headers break
(``outcom``/``e``). ``Grid`` lays its columns out itself when it is printed, for the
width it is given:

- a fixed column (ids, counts, dates) always gets its widest cell;
- a text column gets at least its longest word, so wrapping happens between words;
- a fold column (URLs, error messages) may break anywhere, never less than a few
  characters wide;
- when that does not fit, the secondary columns go first (highest ``drop`` first),
  each either dropped or, with ``into``, shown on a line of its own under another
  column's cell; a ``Brief`` cell shows its short form when its full form would wrap.

What a word is: a run of characters between spaces, which holds for scripts written
with spaces between words (Latin, Cyrillic, Greek, Arabic, Urdu, Hebrew, Korean …).
Chinese and Japanese are written without spaces and break between any two characters
(Unicode line breaking, UAX #14 class ID), so each wide character is a word of its own.
A "word" longer than ``_WORD_CAP`` cells is an identifier or a URL, not a word, and may
be folded anywhere.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len
from rich.table import Column, Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console, ConsoleOptions, RenderResult

Kind = Literal["text", "fold", "fixed"]

_WORD_CAP = 24  # longer unbroken runs are URLs, paths or ids: they fold
_FOLD_MIN = 12  # a fold column narrower than this reads as a column of characters
_SQUEEZE_MIN = 4  # below every minimum (a very narrow terminal): columns never go under this


@dataclass(frozen=True, slots=True)
class Col:
    """One column: ``drop`` > 0 makes it secondary (the highest goes first when narrow);
    ``into`` names the column whose cells take its text when it goes; ``max_width``
    caps how wide it grows; ``weight`` is its share of the room left over."""

    name: str
    kind: Kind = "text"
    drop: int = 0
    into: str | None = None
    max_width: int | None = None
    min_width: int = 0
    weight: int = 1
    justify: Literal["left", "right"] = "left"


@dataclass(frozen=True, slots=True)
class Brief:
    """A cell with a short form, shown when the column is too narrow for ``full`` on one line."""

    full: Text
    short: Text


Cell = str | Text | Brief


def parse_spec(spec: str) -> Col:
    """``"name"``, ``"name:fold"``, ``"name:fixed"``, ``"name:fold:40"`` (40: the cap)."""
    name, kind, cap = ([*spec.split(":"), "", ""])[:3]
    if kind not in ("", "text", "fold", "fixed"):
        raise ValueError(f"unknown column kind {kind!r} in {spec!r}")
    return Col(name, kind=(kind or "text"), max_width=int(cap) if cap else None)  # type: ignore[arg-type]


def _as_text(cell: str | Text) -> Text:
    # A str cell is ours (may carry console markup); feed text arrives as Text already.
    return cell if isinstance(cell, Text) else Text.from_markup(cell)


def _longest_word(plain: str) -> int:
    longest = 0
    for token in plain.split():
        run = 0
        for ch in token:
            if unicodedata.east_asian_width(ch) in ("W", "F"):
                longest = max(longest, run, cell_len(ch))
                run = 0
            else:
                run += cell_len(ch)
        longest = max(longest, run)
    return min(longest, _WORD_CAP)


def _widest_line(plain: str) -> int:
    return max((cell_len(line) for line in plain.split("\n")), default=0)


@dataclass(slots=True)
class _Measure:
    natural: int  # widest line of any cell (full forms), or of the header
    natural_short: int  # the same with the short forms of ``Brief`` cells
    need: int  # the least width that wraps nothing it must not


def _measure(col: Col, cells: Sequence[Cell]) -> _Measure:
    natural = natural_short = cell_len(col.name)
    word = _longest_word(col.name)
    for cell in cells:
        full = cell.full if isinstance(cell, Brief) else cell
        short = cell.short if isinstance(cell, Brief) else cell
        plain = _as_text(full).plain
        natural = max(natural, _widest_line(plain))
        short_plain = _as_text(short).plain
        natural_short = max(natural_short, _widest_line(short_plain))
        word = max(word, _widest_line(short_plain) if col.kind == "fixed" else 0)
        word = max(word, _longest_word(short_plain))
    if col.kind == "fixed":
        need = word  # the widest cell, and the header's longest word
    elif col.kind == "fold":
        need = min(natural, max(word if word < _WORD_CAP else 0, col.min_width, _FOLD_MIN))
    else:
        need = min(natural, max(word, col.min_width))
    return _Measure(natural=natural, natural_short=natural_short, need=need)


class Grid:
    """A table that lays itself out for the width it is printed at (see the module doc)."""

    def __init__(self, *columns: str | Col, title: str | None = None, boxed: bool = True) -> None:
        self.columns = [c if isinstance(c, Col) else parse_spec(c) for c in columns]
        self.title = title
        self.boxed = boxed
        self.rows: list[list[Cell]] = []

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def _overhead(self, n: int) -> int:
        # Boxed: a border before each column and after the last, one space each side of
        # a cell. Unboxed: two spaces between columns, none at the edges.
        return 3 * n + 1 if self.boxed else 2 * max(n - 1, 0)

    def layout(self, width: int) -> tuple[list[Col], list[list[Cell]], list[int]]:
        """The columns shown at ``width``, their cells (dropped ones folded in) and widths."""
        shown = list(range(len(self.columns)))
        while True:
            cols, rows = self._fold(shown)
            measures = [_measure(c, [r[i] for r in rows]) for i, c in enumerate(cols)]
            spare = width - self._overhead(len(cols)) - sum(m.need for m in measures)
            droppable = [i for i in shown if self.columns[i].drop > 0]
            if spare >= 0 or not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (self.columns[i].drop, i)))
        widths = [m.need for m in measures]
        if spare < 0:
            _squeeze(cols, widths, -spare)
        else:
            _grow(cols, measures, widths, spare)
        return cols, rows, widths

    def _fold(self, shown: Sequence[int]) -> tuple[list[Col], list[list[Cell]]]:
        """The shown columns; a dropped column with ``into`` adds a line to that column's cell."""
        index = {c.name: i for i, c in enumerate(self.columns)}
        targets: dict[int, list[int]] = {}
        for i, col in enumerate(self.columns):
            if i not in shown and col.into is not None and index.get(col.into) in shown:
                targets.setdefault(index[col.into], []).append(i)
        rows: list[list[Cell]] = []
        for row in self.rows:
            out: list[Cell] = []
            for i in shown:
                cell = row[i]
                for j in targets.get(i, ()):
                    extra = _as_text(_short(row[j]))
                    if extra.plain.strip() and extra.plain.strip() != "-":
                        if not extra.style and not extra.spans:
                            extra.stylize("dim")
                        cell = _joined(cell, extra)
                out.append(cell)
            rows.append(out)
        return [self.columns[i] for i in shown], rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cols, rows, widths = self.layout(options.max_width)
        table = Table(
            *(
                Column(c.name, width=w, overflow="fold", justify=c.justify)
                for c, w in zip(cols, widths, strict=True)
            ),
            title=self.title,
            expand=False,
        )
        if not self.boxed:
            table.box, table.show_header, table.pad_edge = None, False, False
        for row in rows:
            table.add_row(*(_pick(cell, w) for cell, w in zip(row, widths, strict=True)))
        yield table


def _short(cell: Cell) -> str | Text:
    return cell.short if isinstance(cell, Brief) else cell


def _pick(cell: Cell, width: int) -> Text:
    if isinstance(cell, Brief):
        return cell.full if _widest_line(cell.full.plain) <= width else cell.short
    return _as_text(cell)


def _joined(cell: Cell, extra: Text) -> Cell:
    if isinstance(cell, Brief):
        return Brief(_joined_text(cell.full, extra), _joined_text(cell.short, extra))
    return _joined_text(_as_text(cell), extra)


def _joined_text(first: Text, extra: Text) -> Text:
    if not first.plain.strip():
        return extra
    return Text.assemble(first, "\n", extra)


def _grow(cols: Sequence[Col], measures: Sequence[_Measure], widths: list[int], spare: int) -> None:
    """Hand the room left over to the columns that would wrap less, by weight: first
    whole headers of fixed columns, then up to the short forms, then the full forms."""
    for i, col in enumerate(cols):
        if col.kind == "fixed":
            add = min(max(measures[i].natural - widths[i], 0), spare)
            widths[i] += add
            spare -= add
    for full in (False, True):
        spare = _grow_to(cols, measures, widths, spare, full=full)


def _grow_to(
    cols: Sequence[Col], measures: Sequence[_Measure], widths: list[int], spare: int, *, full: bool
) -> int:
    def room(i: int) -> int:
        natural = measures[i].natural if full else measures[i].natural_short
        cap = cols[i].max_width
        return max((natural if cap is None else min(natural, cap)) - widths[i], 0)

    while spare > 0:
        open_ = [i for i in range(len(cols)) if room(i) > 0]
        if not open_:
            break
        total = sum(cols[i].weight for i in open_)
        given = 0
        for i in open_:
            share = min(room(i), max(1, spare * cols[i].weight // total), spare - given)
            widths[i] += share
            given += share
        spare -= given
        if given == 0:
            break
    return spare


def _squeeze(cols: Sequence[Col], widths: list[int], excess: int) -> None:
    """A terminal too narrow for even the minimums: take from the widest columns first."""
    while excess > 0:
        candidates = [i for i in range(len(cols)) if widths[i] > _SQUEEZE_MIN]
        if not candidates:
            return
        widest = max(candidates, key=lambda i: (cols[i].kind != "fixed", widths[i]))
        widths[widest] -= 1
        excess -= 1


def kv_grid(pairs: Iterable[tuple[str, Cell]]) -> Grid:
    """Key/value lines (``feeds show``): keys right-aligned, values wrapped at words."""
    grid = Grid(Col("key", kind="fixed", justify="right"), Col("value"), boxed=False)
    for key, value in pairs:
        grid.add_row(Text(key, style="bold"), value)
    return grid


__all__ = ["Brief", "Col", "Grid", "kv_grid", "parse_spec"]
