"""A clean diagram of a UI-format workflow (node boxes colored by stage, link curves, groups) as a PIL image.

ComfyUI's template browser shows `<name>.jpg` next to `<name>.json`; this draws it from
the workflow itself so the picture always matches the graph.
"""
from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

SIZE = (512, 384)
MARGIN, CAPTION_HEIGHT, TITLE_BAR = 14, 34, 30
BACKGROUND, GRID, CAPTION_COLOR = (32, 34, 38), (40, 42, 47), (230, 232, 236)
STAGE_COLORS = {  # CATEGORY suffix -> node fill
    "loaders": (88, 70, 140),
    "conditioning": (52, 110, 70),
    "io": (40, 100, 130),
    "encode": (150, 100, 40),
    "latent": (120, 60, 110),
    "sampling": (160, 60, 60),
    "decode": (60, 90, 150),
    "output": (40, 130, 110),
}
OTHER_STAGE = (90, 90, 96)
LINK_COLORS = {"IMAGE": (100, 180, 220), "AUDIO": (230, 170, 70), "FLOAT": (170, 200, 120)}
OTHER_LINK = (200, 200, 210)


def _stage_color(node_class) -> tuple[int, int, int]:
    category = getattr(node_class, "CATEGORY", "") if node_class is not None else ""
    return STAGE_COLORS.get(category.rsplit("/", 1)[-1], OTHER_STAGE)


def _bounds(workflow: dict) -> tuple[float, float, float, float]:
    boxes = [(n["pos"][0], n["pos"][1] - TITLE_BAR, n["size"][0], n["size"][1] + TITLE_BAR) for n in workflow["nodes"]]
    boxes += [tuple(g["bounding"]) for g in workflow.get("groups") or []]
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[0] + b[2] for b in boxes)
    bottom = max(b[1] + b[3] for b in boxes)
    return left, top, right, bottom


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return lines + [current] if current else lines


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """`text`, shortened with "..." until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "..."


def _curve(start, end, steps: int = 24) -> list[tuple[float, float]]:
    (x0, y0), (x3, y3) = start, end
    bend = max(20.0, abs(x3 - x0) * 0.5)
    x1, x2 = x0 + bend, x3 - bend
    points = []
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        x = u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3
        y = u**3 * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y3 + t**3 * y3
        points.append((x, y))
    return points


def render_thumbnail(workflow: dict, node_classes: dict, caption: str, display_names: dict | None = None) -> Image.Image:
    """The diagram of `workflow` with `caption` underneath, SIZE pixels, RGB."""
    image = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(image, "RGBA")
    for x in range(0, SIZE[0], 16):
        draw.line([(x, 0), (x, SIZE[1])], fill=GRID)
    for y in range(0, SIZE[1], 16):
        draw.line([(0, y), (SIZE[0], y)], fill=GRID)
    left, top, right, bottom = _bounds(workflow)
    area_w, area_h = SIZE[0] - 2 * MARGIN, SIZE[1] - 2 * MARGIN - CAPTION_HEIGHT
    scale = min(area_w / (right - left), area_h / (bottom - top))
    dx = MARGIN + (area_w - (right - left) * scale) / 2
    dy = MARGIN + (area_h - (bottom - top) * scale) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return dx + (x - left) * scale, dy + (y - top) * scale

    small = ImageFont.load_default(size=max(8, round(22 * scale)))
    for group in workflow.get("groups") or []:
        gx, gy, gw, gh = group["bounding"]
        color = tuple(int(group["color"].lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
        draw.rounded_rectangle([at(gx, gy), at(gx + gw, gy + gh)], radius=4, fill=color + (60,), outline=color + (160,))
        label = _fit(draw, group["title"].split(":")[0], small, gw * scale - 6)
        draw.text((at(gx, gy)[0] + 3, at(gx, gy)[1] + 2), label, font=small, fill=(235, 235, 235))

    nodes = {n["id"]: n for n in workflow["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, link_type in workflow["links"]:
        a, b = nodes[src], nodes[dst]
        start = at(a["pos"][0] + a["size"][0], a["pos"][1] + (src_slot + 0.5) * 22)
        end = at(b["pos"][0], b["pos"][1] + min(dst_slot + 0.5, 3) * 22)
        draw.line(_curve(start, end), fill=LINK_COLORS.get(link_type, OTHER_LINK) + (220,), width=2)

    font = ImageFont.load_default(size=max(9, round(34 * scale)))
    for node in workflow["nodes"]:
        x, y = node["pos"]
        w, h = node["size"]
        box = [at(x, y - TITLE_BAR), at(x + w, y + h)]
        color = _stage_color(node_classes.get(node["type"]))
        draw.rounded_rectangle(box, radius=5, fill=color, outline=(230, 230, 230), width=1)
        title = node.get("title") or (display_names or {}).get(node["type"], node["type"])
        inner = box[1][0] - box[0][0] - 8
        text_y = box[0][1] + 4
        for line in _wrap(draw, title, font, inner):
            if text_y + font.size > box[1][1]:
                break
            draw.text((box[0][0] + 4, text_y), line, font=font, fill=(250, 250, 250))
            text_y += font.size + 2

    caption_font = ImageFont.load_default(size=18)
    draw.rectangle([(0, SIZE[1] - CAPTION_HEIGHT), SIZE], fill=(22, 23, 26))
    width = draw.textlength(caption, font=caption_font)
    draw.text(((SIZE[0] - width) / 2, SIZE[1] - CAPTION_HEIGHT + 7), caption, font=caption_font, fill=CAPTION_COLOR)
    return image


def save_thumbnail(image: Image.Image, path) -> None:
    """Baseline JPEG, fixed quality, no metadata: the same image gives the same bytes."""
    image.save(path, format="JPEG", quality=88, optimize=False, progressive=False)
