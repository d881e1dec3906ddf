"""Every bound a screenplay must stay within, in one place (README: "Limits").

A screenplay is untrusted input: it can come from a batch folder, a web form or a colleague. Each number here
stops a class of hostile or mistaken input from costing unbounded time or memory (a YAML "billion laughs", a
20,000-character line, `start: 1e9`, a 20000x20000 PNG), and is generous enough that no real screenplay meets it.
`multitalk validate` checks all of them, so a render never discovers them half-way.
"""

from __future__ import annotations

# --- the YAML file --------------------------------------------------------------------------------------------
MAX_SCREENPLAY_BYTES = 1 << 20  # 1 MiB; the long example is 19 KB (about 330 lines of dialogue)
MAX_YAML_DEPTH = 32  # nesting of maps and lists; a screenplay needs about 7
MAX_ALIAS_EXPANSION = 10_000  # values that `*alias` references may copy into the document, all aliases together
MAX_PROBLEMS_PER_KIND = 50  # e.g. control characters: the first 50 are located, the rest counted

# --- structure ------------------------------------------------------------------------------------------------
MAX_SCENES = 500
MAX_LINES_PER_SCENE = 500
MAX_CHARACTERS = 100
MAX_ID_CHARS = 64  # scene ids and character names become file names, task names and cache labels
MAX_TEXT_CHARS = 2_000  # one spoken line; longer text is a paragraph, split it into lines
MAX_PROMPT_CHARS = 4_000  # UMT5 reads at most 512 tokens; longer prompts are cut anyway
MAX_TITLE_CHARS = 200

# --- time (seconds) -------------------------------------------------------------------------------------------
MAX_SCENE_SECONDS = 600.0  # one scene's timeline (10 minutes); at 25 fps that is 15,000 frames
MAX_LINE_OFFSET_SECONDS = 600.0  # `pause`, `overlap`, `start`, `gap`, `lead_in`, `tail`
MAX_RECORDING_SECONDS = 300.0  # a recorded line (before trimming); longer takes are cut into lines
MAX_RECORDING_BYTES = 512 << 20  # a recording file on disk

# --- images ---------------------------------------------------------------------------------------------------
MAX_IMAGE_PIXELS = 4096 * 4096  # a reference image; decoding more is refused before the pixels are allocated
MAX_IMAGE_BYTES = 64 << 20
MIN_IMAGE_SIDE = 32  # pixels; the person masks and the VAE (8x downsampling) need room
MAX_BOX_COORDINATE = 16_384.0  # bbox values, in image pixels

# --- audio levels ---------------------------------------------------------------------------------------------
MIN_TRIM_DB = -120.0  # `timing.trim_db`: below float32 noise there is nothing to trim
MAX_TRIM_DB = -6.0  # a threshold near 0 dBFS would call almost any speech silence
