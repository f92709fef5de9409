"""Render `tmux capture-pane -p -e` output (text with ANSI SGR colours) to a PNG with PIL.

    python render.py capture.ansi out.png
"""
from __future__ import annotations

import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BASE16 = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188), (17, 168, 205),
          (229, 229, 229), (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234),
          (214, 112, 214), (41, 184, 219), (255, 255, 255)]
DEFAULT_FG, DEFAULT_BG = (220, 220, 220), (20, 22, 28)
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def color256(n: int) -> tuple[int, int, int]:
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
    v = 8 + (n - 232) * 10
    return v, v, v


def parse(line: str, state: dict) -> list[tuple[str, dict]]:
    out, pos = [], 0
    for m in SGR.finditer(line):
        if m.start() > pos:
            out.append((line[pos:m.start()], dict(state)))
        codes = [int(c) if c else 0 for c in re.split("[;:]", m.group(1))] or [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                state.clear()
            elif c == 1:
                state["bold"] = True
            elif c == 3:
                state["italic"] = True
            elif c == 7:
                state["reverse"] = True
            elif c in (22, 23, 27):
                state.pop({22: "bold", 23: "italic", 27: "reverse"}[c], None)
            elif 30 <= c <= 37 or 90 <= c <= 97:
                state["fg"] = BASE16[c - 30 if c < 90 else c - 82]
            elif 40 <= c <= 47 or 100 <= c <= 107:
                state["bg"] = BASE16[c - 40 if c < 100 else c - 92]
            elif c == 39:
                state.pop("fg", None)
            elif c == 49:
                state.pop("bg", None)
            elif c in (38, 48) and i + 1 < len(codes):
                key = "fg" if c == 38 else "bg"
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    state[key] = color256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    state[key] = tuple(codes[i + 2:i + 5])
                    i += 4
            i += 1
        pos = m.end()
    if pos < len(line):
        out.append((line[pos:], dict(state)))
    return out


def main(src: str, dst: str) -> None:
    lines = open(src, encoding="utf-8", errors="replace").read().rstrip("\n").split("\n")
    font = ImageFont.truetype(FONT, 16)
    fonts = {"": font, "i": ImageFont.truetype(FONT.replace("Mono.ttf", "Mono-Oblique.ttf"), 16),
             "b": ImageFont.truetype(FONT.replace("Mono.ttf", "Mono-Bold.ttf"), 16)}
    cw = round(font.getlength("M"))
    ch = 20
    cols = max(len(SGR.sub("", ln)) for ln in lines)
    img = Image.new("RGB", (cw * cols + 20, ch * len(lines) + 20), DEFAULT_BG)
    draw = ImageDraw.Draw(img)
    state: dict = {}
    for row, ln in enumerate(lines):
        x = 10
        y = 10 + row * ch
        for text, st in parse(ln, state):
            fg, bg = st.get("fg", DEFAULT_FG), st.get("bg", DEFAULT_BG)
            if st.get("reverse"):
                fg, bg = bg, fg
            f = fonts["b"] if st.get("bold") else fonts["i"] if st.get("italic") else fonts[""]
            w = cw * len(text)
            if bg != DEFAULT_BG:
                draw.rectangle([x, y, x + w, y + ch], fill=bg)
            for i, c in enumerate(text):  # one cell per character keeps the terminal grid exact
                draw.text((x + i * cw, y + 1), c, font=f, fill=fg)
            x += w
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
