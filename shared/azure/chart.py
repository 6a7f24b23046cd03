"""Draw a ChartLayout (shared.domain.training) as a PNG with Pillow: headless, no display, no matplotlib.

Pillow is imported when a chart is drawn, never when the function app is indexed. The text uses
Pillow's built-in bitmap font (`ImageFont.load_default`), so no font file has to be deployed.
"""

from __future__ import annotations

import io

from shared.domain.training import ChartLayout

INK, GRID, BACKGROUND = (40, 40, 40), (225, 225, 225), (255, 255, 255)


def render_png(layout: ChartLayout) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    try:
        font, title_font = ImageFont.load_default(size=13), ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1: one bitmap size only
        font = title_font = ImageFont.load_default()
    left, top, right, bottom = layout.plot
    for y, label in layout.y_ticks:
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((left - 6, y), label, fill=INK, font=font, anchor="rm")
    for x, label in layout.x_ticks:
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.text((x, bottom + 6), label, fill=INK, font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text((layout.size[0] / 2, 18), layout.title, fill=INK, font=title_font, anchor="mm")
    draw.text(((left + right) / 2, bottom + 30), layout.x_label, fill=INK, font=font, anchor="mt")
    draw.text((12, (top + bottom) / 2), layout.y_label, fill=INK, font=font, anchor="lm")
    for line in layout.lines:
        if len(line.pixels) > 1:
            draw.line(line.pixels, fill=line.color, width=2, joint="curve")
        for x, y in line.pixels:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=line.color)
    # Legend, right of the plot.
    x, y = right + 16, top + 4
    for line in layout.lines:
        draw.line([(x, y + 7), (x + 22, y + 7)], fill=line.color, width=3)
        draw.text((x + 28, y + 7), line.label[:24], fill=INK, font=font, anchor="lm")
        y += 22
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
