"""The render stages, one file each, each owning its key and its build over the store.

    voice  (voice.py)  one line's audio                     key: text or recording, voice, engine + version
    align  (align.py)  a scene's timeline, tracks and mix   key: its voice keys, timing and mix settings
    chunk  (chunk.py)  one streamed chunk's segment         key: scene picture, renderer, audio window, key(k−1)
    clip   (clip.py)   a scene's MP4                        key: its chunk keys and align key
    final  (final.py)  the stitched screenplay              key: clip keys, align keys, subtitles

Each module has `STAGE` (a `Stage`, whose value names the store folder, the `--force` option, the Prefect task
and the UI), `key(...)`, `load(store, key)` (the typed result, or None when the store lacks it) and
`build(store, key, ...)` (compute, commit, return the typed result). `plan.py` computes every key up front;
`render.py` is `multitalk.render`, which composes the stages without Prefect.
"""

from multitalk.stages.stage import Stage, parse_stages

__all__ = ["Stage", "parse_stages"]
