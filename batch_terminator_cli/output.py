"""Terminal output that shows text from users and from Batch literally.

Rich reads `[...]` as markup: a policy cell ending in " [dry run]" loses its words, and a job
named `[bold]x` restyles the table. Every cell and message that carries such text goes through
these helpers, which build `rich.text.Text` (never parsed as markup).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text


def literal(value: object, style: str = "") -> Text:
    return Text(str(value), style=style)


def add_row(table: Table, *cells: object) -> None:
    """A table row whose cells are shown exactly as given."""
    table.add_row(*(cell if isinstance(cell, Text) else literal(cell) for cell in cells))


def labelled(label: str, detail: object, style: str = "red") -> Text:
    """`label: detail`, the label styled and the detail literal."""
    return Text.assemble((f"{label}:", style), " ", str(detail))


def say(console: Console, *parts: object) -> None:
    """Print parts side by side, each literal unless it is a Text already."""
    console.print(
        Text.assemble(*(p if isinstance(p, Text) else str(p) for p in parts)), highlight=False
    )
