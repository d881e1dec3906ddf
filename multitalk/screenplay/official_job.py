"""Official MultiTalk job files (`--input_json`) turned into a screenplay: one job, one scene.

The official format, as its examples write it:

    {"prompt": "...", "cond_image": "examples/multi/1/multi1.png",
     "audio_type": "add" | "para",                       # two people: one after the other, or at the same time
     "cond_audio": {"person1": "1.WAV", "person2": "2.WAV"},
     "bbox": {"person1": [top, left, bottom, right], ...}, # optional; source pixels, ROW first
     "tts_audio": {"text": "(s1) Hi. (s2) Hello.", "human1_voice": ".../Kokoro-82M/voices/am_adam.pt", ...}}

How each part maps:
- `bbox` rows come first (`[top, left, bottom, right]`); ours are `[x0, y0, x1, y1]`, so `[t, l, b, r]` becomes
  `[l, t, r, b]`. Without boxes, the official code gives each person half the image: person1 left, person2 right
  (one person: the whole image).
- `cond_audio` recordings become recorded lines with `trim: false` (the official model hears every sample,
  leading silence included) and the screenplay's lead-in, gap and tail are 0, so the scene lasts exactly as long
  as the official audio: `para` lines both start at 0 (the scene is the longer one), `add` lines follow each
  other (the scene is their sum). The second `add` line starts on the frame that makes the scene end on the
  frame covering the summed audio (`ceil(total * 25)` frames), at most one frame from its exact start.
- `tts_audio` becomes Kokoro characters (`voice` = the `.pt` file's name, `model` = the Kokoro folder when it is
  on this machine) with an espeak `fallback` by the voice's gender letter, and one line per `(sN)` turn.

Paths in a job are relative to the official repository's root, so each is looked up beside the job file and then
in the folders above it. Assets are copied next to the written screenplay (screenplay paths stay inside its
folder).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multitalk.media.probe import ProbeError, media_duration
from multitalk.timing import FPS

PERSON_KEY = re.compile(r"^person(\d+)$")
TURN = re.compile(r"\(s(\d+)\)")  # "(s1) Hello (s2) Hi": whose turn it is
KNOWN_KEYS = {"prompt", "cond_image", "cond_audio", "audio_type", "bbox", "tts_audio", "video_audio", "cond_video"}
ANCESTORS = 3  # how many folders above the job file a relative path may start from
FALLBACKS = {"f": "en-us+f3", "m": "en-us+m3"}  # Kokoro voice names: af_heart = American female


class JobError(ValueError):
    """An official job file that cannot be imported: names the file and the key."""


@dataclass
class ImportedScene:
    """One job as a scene, plus the files to copy beside the screenplay (source -> name inside the project)."""

    scene: dict[str, Any]
    characters: dict[str, dict[str, Any]]
    assets: dict[Path, str] = field(default_factory=dict)
    uses_recordings: bool = False


def box_from_official(box: list[float]) -> list[float]:
    """Official `[top, left, bottom, right]` (row first) as ours `[x0, y0, x1, y1]`."""
    top, left, bottom, right = box
    return [left, top, right, bottom]


def _find(job_file: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise JobError(f"{job_file}: {key}: expected a file path, got {value!r}")
    path = Path(value)
    if path.is_absolute():
        candidates = [path]
    else:
        folder = job_file.resolve().parent
        candidates = [folder, *list(folder.parents)[:ANCESTORS]]
        candidates = [base / path for base in candidates]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise JobError(f"{job_file}: {key}: {value!r} not found (looked in {', '.join(str(c) for c in candidates)})")


def _people(job_file: Path, mapping: Any, key: str) -> dict[int, Any]:
    """{1: value, 2: value} from {"person1": ..., "person2": ...}."""
    if not isinstance(mapping, dict):
        raise JobError(f"{job_file}: {key}: expected a mapping of person1, person2, got {mapping!r}")
    people = {}
    for name, value in mapping.items():
        match = PERSON_KEY.match(str(name))
        if match is None:
            raise JobError(f"{job_file}: {key}.{name}: expected person1 or person2")
        people[int(match.group(1))] = value
    if sorted(people) not in ([1], [1, 2]):
        raise JobError(f"{job_file}: {key}: expected person1 (and person2), got {', '.join(map(str, mapping))}")
    return people


def _scene_id(job_file: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9_\-]+", "-", job_file.stem).strip("-_") or "job"
    return slug if slug[0].isalnum() else f"job-{slug}"


def _recorded_lines(
    job_file: Path, job: dict[str, Any], names: dict[int, str], assets: dict[Path, str], folder: str
) -> list[dict[str, Any]]:
    people = _people(job_file, job["cond_audio"], "cond_audio")
    recordings = {n: _find(job_file, value, f"cond_audio.person{n}") for n, value in people.items()}
    audio_type = job.get("audio_type", "add" if len(recordings) > 1 else None)
    if len(recordings) > 1 and audio_type not in ("add", "para"):
        raise JobError(f"{job_file}: audio_type: expected 'add' or 'para', got {audio_type!r}")
    durations = {}
    for person, path in recordings.items():
        try:
            durations[person] = media_duration(path)
        except ProbeError as error:
            raise JobError(f"{job_file}: cond_audio.person{person}: {error}") from None
    lines = []
    for person in sorted(recordings):
        target = f"{folder}/{recordings[person].name}"
        assets[recordings[person]] = target
        line: dict[str, Any] = {"speaker": names[person], "audio": target, "trim": False}
        if audio_type == "para":
            line["start"] = 0
        lines.append(line)
    if audio_type == "add" and len(lines) == 2:
        total_frames = math.ceil(round((durations[1] + durations[2]) * FPS, 6))
        second_frames = math.ceil(round(durations[2] * FPS, 6))
        lines[1]["start"] = round((total_frames - second_frames) / FPS, 2)
    return lines


def _tts_lines(
    job_file: Path, job: dict[str, Any], names: dict[int, str], characters: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    tts = job["tts_audio"]
    if not isinstance(tts, dict) or not isinstance(tts.get("text"), str):
        raise JobError(f"{job_file}: tts_audio: expected {{text, human1_voice[, human2_voice]}}")
    for person, name in names.items():
        voice_file = tts.get(f"human{person}_voice")
        if not isinstance(voice_file, str) or not voice_file:
            raise JobError(f"{job_file}: tts_audio.human{person}_voice: a Kokoro voice file (.pt) is needed")
        voice = Path(voice_file).stem
        character: dict[str, Any] = {"engine": "kokoro", "voice": voice, "display_name": f"person {person}"}
        try:
            found = _find(job_file, voice_file, f"tts_audio.human{person}_voice")
            character["model"] = str(found.parent.parent)  # <Kokoro-82M>/voices/<voice>.pt
        except JobError:
            pass  # the model folder comes from MULTITALK_KOKORO_MODEL, or the fallback speaks
        character["fallback"] = FALLBACKS.get(voice[1:2], "en-us")
        characters[name] = character
    text = tts["text"]
    turns = TURN.split(text)
    lines = []
    if turns[0].strip():  # text before any marker: the first person's (a single-person job has no markers)
        lines.append({"speaker": names[1], "text": turns[0].strip()})
    for number, said in zip(turns[1::2], turns[2::2], strict=True):
        person = int(number)
        if person not in names:
            raise JobError(f"{job_file}: tts_audio.text: (s{person}) has no human{person}_voice")
        if said.strip():
            lines.append({"speaker": names[person], "text": said.strip()})
    if not lines:
        raise JobError(f"{job_file}: tts_audio.text: nothing to say")
    return lines


def import_job(job_file: Path, assets_folder: str, prefix: str = "") -> ImportedScene:
    """One official job file as a scene (characters named `<prefix>person1`...), with its assets to copy."""
    try:
        job = json.loads(job_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise JobError(f"{job_file}: not a readable JSON job ({error})") from None
    if not isinstance(job, dict):
        raise JobError(f"{job_file}: a job is a JSON object with prompt, cond_image and cond_audio")
    unknown = sorted(set(job) - KNOWN_KEYS)
    if unknown:
        raise JobError(f"{job_file}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
    if "cond_video" in job and "cond_image" not in job:
        raise JobError(f"{job_file}: cond_video (video dubbing) is not supported; give cond_image")
    scene_id = _scene_id(job_file)
    folder = f"{assets_folder}/{scene_id}"
    image = _find(job_file, job.get("cond_image"), "cond_image")
    assets = {image: f"{folder}/{image.name}"}
    tts = bool(job.get("tts_audio")) and not job.get("cond_audio")
    if tts:
        count = 2 if isinstance(job["tts_audio"], dict) and job["tts_audio"].get("human2_voice") else 1
    else:
        if not job.get("cond_audio"):
            raise JobError(f"{job_file}: cond_audio: give person1 (and person2) recordings, or tts_audio")
        count = len(_people(job_file, job["cond_audio"], "cond_audio"))
    names = {n: f"{prefix}person{n}" for n in range(1, count + 1)}
    characters: dict[str, dict[str, Any]] = {
        name: {"engine": "file", "display_name": f"person {n}"} for n, name in names.items()
    }
    if tts:
        lines = _tts_lines(job_file, job, names, characters)
    else:
        lines = _recorded_lines(job_file, job, names, assets, folder)
    if job.get("bbox"):
        boxes = _people(job_file, job["bbox"], "bbox")
        cast: dict[str, Any] = {}
        for person, box in boxes.items():
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
                raise JobError(f"{job_file}: bbox.person{person}: expected [top, left, bottom, right], got {box!r}")
            cast[names[person]] = {"bbox": box_from_official(box)}
    elif count == 1:
        cast = {names[1]: "center"}
    else:
        cast = {names[1]: "left", names[2]: "right"}  # the official code's halves
    scene = {"id": scene_id, "image": assets[image], "prompt": str(job.get("prompt", "")), "cast": cast, "lines": lines}
    return ImportedScene(scene, characters, assets, uses_recordings=not tts)


def import_jobs(job_files: list[Path], output: Path) -> dict[str, Any]:
    """Official jobs as one screenplay document written to `output`, assets copied beside it; returns the document."""
    assets_folder = f"{output.stem}_assets"
    several = len(job_files) > 1
    imported = []
    seen: set[str] = set()
    for job_file in job_files:
        prefix = f"{_scene_id(job_file)}_" if several else ""
        scene = import_job(job_file, assets_folder, prefix)
        if scene.scene["id"] in seen:
            raise JobError(f"{job_file}: another job is also named {scene.scene['id']!r}; rename one file")
        seen.add(scene.scene["id"])
        imported.append(scene)
    document: dict[str, Any] = {"title": output.stem.replace("_", " ").replace("-", " ").strip() or "imported"}
    if any(scene.uses_recordings for scene in imported):
        # The official model hears each recording whole: no lead-in, gap or tail of our own.
        document["defaults"] = {"timing": {"lead_in": 0, "gap": 0, "tail": 0}}
    document["characters"] = {name: c for scene in imported for name, c in scene.characters.items()}
    document["scenes"] = [scene.scene for scene in imported]
    root = output.resolve().parent
    for scene in imported:
        for source, target in scene.assets.items():
            destination = root / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            if not destination.exists() or destination.stat().st_size != source.stat().st_size:
                shutil.copyfile(source, destination)
    return document
