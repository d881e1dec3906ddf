"""The font of burned-in text (preview subtitles and labels, the timeline picture): wide Unicode coverage.

Pillow's built-in font lacks many glyphs authors type (the em dash of "But this time—", accented names, curly
quotes) and draws a box for them. DejaVu Sans (Debian `fonts-dejavu-core`, installed by setup.sh) or Noto Sans
cover them; the first one found is used, Pillow's font only when neither is installed. `font_identity()` names the
font in the preview renderer's identity, so frames drawn with another font never share cache entries.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # Debian/Ubuntu fonts-dejavu-core
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),  # Fedora
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),  # Debian fonts-noto-core
    Path("/usr/share/fonts/noto/NotoSans-Regular.ttf"),
)


@functools.cache
def font_file() -> Path | None:
    """The wide-coverage font this machine has, or None (Pillow's built-in font is used then)."""
    return next((path for path in CANDIDATES if path.is_file()), None)


@functools.lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The text font at `size` pixels."""
    path = font_file()
    return ImageFont.truetype(str(path), size) if path is not None else ImageFont.load_default(size=size)


def font_identity() -> str:
    """Which font draws text here, for cache keys ("DejaVuSans.ttf:<bytes>" or "pillow-default")."""
    path = font_file()
    return f"{path.name}:{path.stat().st_size}" if path is not None else "pillow-default"
