"""Contact sheets: a grid of labelled thumbnails, for looking at many results at once."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageOps


def contact_sheet(items: list[tuple[str, Image.Image]], thumb: int = 384, columns: int = 4) -> Image.Image:
    """Thumbnails (long side ``thumb``) in a grid, each with its label underneath."""
    if not items:
        raise ValueError("contact sheet needs at least one image")
    label_h = 22
    columns = min(columns, len(items))
    rows = (len(items) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * thumb, rows * (thumb + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (label, image) in enumerate(items):
        cell = ImageOps.contain(image.convert("RGB"), (thumb, thumb))
        x, y = (index % columns) * thumb, (index // columns) * (thumb + label_h)
        sheet.paste(cell, (x + (thumb - cell.width) // 2, y + (thumb - cell.height) // 2))
        draw.text((x + 6, y + thumb + 4), label, fill="black")
    return sheet
