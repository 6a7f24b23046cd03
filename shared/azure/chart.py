"""Draw a ChartLayout (shared.domain.training) as a PNG with Pillow: headless, no display, no matplotlib.

Pillow is imported when a chart is drawn, never when the function app is indexed. The text uses
Pillow's built-in bitmap font (`ImageFont.load_default`), so no font file has to be deployed.
"""

from __future__ import annotations

import io
from typing import Any

from shared.domain.training import ChartLayout

INK, GRID, BACKGROUND = (40, 40, 40), (225, 225, 225), (255, 255, 255)


def render_png(layout: ChartLayout) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    fonts: dict[int, Any] = {}

    def font(size: int) -> Any:
        if size not in fonts:
            try:
                fonts[size] = ImageFont.load_default(size=size)
            except TypeError:  # Pillow < 10.1: one bitmap size only
                fonts[size] = ImageFont.load_default()
        return fonts[size]

    for panel in layout.panels:
        left, top, right, bottom = panel.plot
        for x in panel.grid_x:
            draw.line([(x, top), (x, bottom)], fill=GRID)
        for y in panel.grid_y:
            draw.line([(left, y), (right, y)], fill=GRID)
        draw.rectangle([left, top, right, bottom], outline=INK)
        for line in panel.lines:
            if len(line.pixels) > 1:
                draw.line(line.pixels, fill=line.color, width=2, joint="curve")
            for x, y in line.pixels:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=line.color)
    for x, y, color in layout.legend:
        draw.line([(x, y), (x + 22, y)], fill=color, width=3)
    for label in layout.labels:
        draw.text((label.x, label.y), label.text, fill=INK, font=font(label.size), anchor=label.anchor)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
