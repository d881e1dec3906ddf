"""Cross-field rules of a screenplay: what the schema alone cannot see.

Each check reports every problem it finds (not just the first), pinned to where the author wrote it. These are
the mistakes that would otherwise cost a render: an unknown speaker, a missing image, a box outside the image
(the official model turns an empty person mask into NaN and a black video), three people talking at once.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from pathlib import Path

from multitalk.audio.voice_catalog import voice_problems
from multitalk.media.probe import ProbeError, probe
from multitalk.screenplay import limits
from multitalk.screenplay.cast_checks import check_cast
from multitalk.screenplay.media_checks import ImageFacts, MediaProblem, check_image, check_recording
from multitalk.screenplay.model_settings import LoraSetting
from multitalk.screenplay.problems import DocPath, Problem
from multitalk.screenplay.schema import NAME_PATTERN, Character, Line, Placement, Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap

MAX_SPEAKERS_ON_SCREEN = 2  # MultiTalk binds at most two audio streams to people in the image


def resolve_inside(project_dir: Path, relative: str) -> Path | None:
    """`relative` resolved against the project folder, or None when it escapes the folder."""
    root = project_dir.resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Checker:
    def __init__(self, screenplay: Screenplay, source: SourceMap, scenes: list[tuple[int, Scene]]):
        self.screenplay = screenplay
        self.indexed_scenes = scenes
        self.source = source
        self.problems: list[Problem] = []
        self.project_dir = screenplay.project_dir
        self.images: dict[Path, ImageFacts | MediaProblem] = {}

    def report(self, path: DocPath, message: str) -> None:
        self.problems.append(self.source.problem(path, message))

    def asset(self, path: DocPath, relative: str, what: str) -> Path | None:
        """Resolve an asset path inside the project folder and check that it exists."""
        resolved = resolve_inside(self.project_dir, relative)
        if resolved is None:
            self.report(
                path,
                f"{what} {relative!r} resolves outside the screenplay's folder {self.project_dir}; "
                "keep assets inside the project folder",
            )
            return None
        if not resolved.exists():
            self.report(path, f"{what} {relative!r} not found (looked for {resolved})")
            return None
        if not resolved.is_file():  # a folder, FIFO or device would hang or flood the reader
            self.report(path, f"{what} {relative!r} is not a regular file ({resolved}); point it at a file")
            return None
        return resolved

    # --- characters -------------------------------------------------------------------------------------
    def characters(self) -> None:
        for name, character in self.screenplay.characters.items():
            where = ("characters", name)
            if not re.match(NAME_PATTERN, name):
                self.report(where, f"character name {name!r}: use letters, digits, '_' or '-' (no spaces)")
            elif len(name) > limits.MAX_ID_CHARS:
                self.report(where, f"character name is {len(name)} characters long; at most {limits.MAX_ID_CHARS}")
            if character.engine == "coqui" and not character.model:
                self.report(
                    where,
                    "a coqui voice needs `model:` (a local model folder or an installed Coqui model name)",
                )
            else:
                self.voice(name, character)
            if character.speaker_wav is not None:
                if character.engine != "coqui":
                    self.report(
                        (*where, "speaker_wav"),
                        f"speaker_wav clones a voice with the coqui engine; {name!r} uses {character.engine!r}",
                    )
                resolved = self.asset((*where, "speaker_wav"), character.speaker_wav, "speaker_wav")
                character._speaker_wav_path = resolved

    # --- model ------------------------------------------------------------------------------------------
    def model_loras(self, loras: list[LoraSetting] | None, where: DocPath) -> None:
        """Resolve LoRA files: relative paths inside the project folder, absolute ones anywhere (like weights)."""
        for index, lora in enumerate(loras or []):
            at: DocPath = (*where, "loras", index, "path")
            if Path(lora.path).expanduser().is_absolute():
                resolved = Path(lora.path).expanduser()
                if not resolved.is_file():
                    self.report(at, f"LoRA file {lora.path!r} not found")
                    continue
                lora._resolved = resolved
            else:
                lora._resolved = self.asset(at, lora.path, "LoRA file")

    def voice(self, name: str, character: Character) -> None:
        """Unknown voices and missing models, located at the field that names them (see voice_catalog)."""
        if character.engine == "file":
            return
        for problem in voice_problems(character, self.project_dir):
            field = problem.field
            given = field is not None and (field != "language" or "language" in character.model_fields_set)
            self.report(("characters", name, field) if given else ("characters", name), problem.message)

    # --- scenes -----------------------------------------------------------------------------------------
    def scenes(self) -> None:
        first_seen: dict[str, int] = {}
        for index, scene in self.indexed_scenes:
            where: DocPath = ("scenes", index)
            if not scene.id:  # a scene whose id failed the schema: reported there
                pass
            elif scene.id in first_seen:
                line, _ = self.source.locate(("scenes", first_seen[scene.id], "id"))
                self.report((*where, "id"), f"duplicate scene id {scene.id!r} (first used on line {line})")
            else:
                first_seen[scene.id] = index
            self.scene(scene, where)

    def scene(self, scene: Scene, where: DocPath) -> None:
        known = list(self.screenplay.characters)
        if scene.model is not None:
            self.model_loras(scene.model.loras, (*where, "model"))
        if scene.video is not None:
            image = self.asset((*where, "video"), scene.video, "video") if isinstance(scene.video, str) else None
            scene._image_path = scene._video_path = image
            image_size = self.video_size((*where, "video"), image, scene) if image else None
        else:
            image = self.asset((*where, "image"), scene.image, "image") if isinstance(scene.image, str) else None
            scene._image_path = image
            image_size = self.image_size((*where, "image"), image) if image else None
        if len(scene.lines) > limits.MAX_LINES_PER_SCENE:
            self.report(
                (*where, "lines"),
                f"{len(scene.lines)} lines in one scene; at most {limits.MAX_LINES_PER_SCENE} — split the scene",
            )
        for name in scene.cast:
            if name not in self.screenplay.characters:
                self.report(
                    (*where, "cast", name),
                    f"unknown character {name!r} in cast (known: {', '.join(known)}){_did_you_mean(name, known)}",
                )
        self.lines(scene, where)
        if scene.video is None and image is not None and image_size is not None:  # `auto` places become boxes
            cast = check_cast(scene, where, image, image_size, self.screenplay.defaults.resolution, self.source)
            self.problems += cast.problems
            self.screenplay.warnings.extend(cast.warnings)
        self.placements(scene, where, image_size)

    def video_size(self, path: DocPath, video: Path, scene: Scene) -> tuple[int, int] | None:
        """A take to dub: InfiniteTalk only, and a readable video stream; its (width, height)."""
        family = self.screenplay.defaults.model.with_scene(scene.model).family
        if family != "infinitetalk":
            self.report(
                path,
                f"dubbing a video needs the InfiniteTalk model (model family is {family!r}); add `model: "
                "infinitetalk` to the scene or to defaults, or give an `image:` instead",
            )
        try:
            streams = [s for s in probe(video).get("streams", []) if s.get("codec_type") == "video"]
        except ProbeError as error:
            self.report(path, f"cannot read {video.name} as a video ({error}); use an MP4, MOV or MKV take")
            return None
        if not streams or not streams[0].get("width") or not streams[0].get("height"):
            self.report(path, f"{video.name} has no video stream; give a recorded take (or use `image:`)")
            return None
        return int(streams[0]["width"]), int(streams[0]["height"])

    def image_size(self, path: DocPath, image: Path) -> tuple[int, int] | None:
        if image not in self.images:  # scenes often share a picture: decode each file once
            try:
                self.images[image] = check_image(image)
            except MediaProblem as error:
                self.images[image] = error
        facts = self.images[image]
        if isinstance(facts, MediaProblem):
            self.report(path, str(facts))
            return None
        return facts.width, facts.height

    def lines(self, scene: Scene, where: DocPath) -> None:
        known = list(self.screenplay.characters)
        previous_duration: float | None = None
        timing = self.screenplay.defaults.timing
        earliest = 0.0  # a lower bound of where the scene is, counting TTS lines as taking no time
        too_long_reported = False
        for index, line in enumerate(scene.lines):
            at: DocPath = (*where, "lines", index)
            character = self.screenplay.characters.get(line.speaker)
            if character is None and known:  # with no valid characters section, that is the problem reported
                self.report(
                    (*at, "speaker"),
                    f"unknown speaker {line.speaker!r} (known: {', '.join(known)}){_did_you_mean(line.speaker, known)}",
                )
            self.line_content(line, at, character.engine if character else None)
            self.line_timing(line, at, index, previous_duration)
            previous_duration = None
            if line.audio is not None:
                line._audio_path = self.asset((*at, "audio"), line.audio, "audio file")
                if line.audio_path is not None:
                    try:
                        trimmed = getattr(line, "trim", True) is not False  # an untrimmed line keeps its silence
                        threshold = self.screenplay.defaults.timing.trim_db if trimmed else None
                        facts = check_recording(line.audio_path, threshold)
                    except MediaProblem as error:
                        self.report((*at, "audio"), str(error))
                    else:
                        previous_duration = facts.duration
            if line.start is not None:
                earliest = line.start
            elif line.overlap is not None:
                earliest = max(0.0, earliest - line.overlap)
            elif index == 0:
                earliest = line.pause if line.pause is not None else timing.lead_in
            else:
                earliest += line.pause if line.pause is not None else timing.gap
            earliest += previous_duration or 0.0
            if earliest > limits.MAX_SCENE_SECONDS and not too_long_reported:
                too_long_reported = True
                self.report(
                    at,
                    f"the scene reaches {earliest:.1f}s by this line (pauses, starts and recordings alone); a scene "
                    f"lasts at most {limits.MAX_SCENE_SECONDS:g}s — split it into several scenes",
                )

    def line_content(self, line: Line, at: DocPath, engine: str | None) -> None:
        if line.text is not None and line.audio is not None:
            if not line.text.strip():
                self.report((*at, "text"), "empty transcript; write what the recording says, or remove `text`")
        elif line.audio is None:
            if line.text is None or not line.text.strip():
                self.report((*at, "text"), "empty text; write what is said, or give a recording as `audio:`")
            elif (problem := _unvoiceable(line.text)) is not None:
                self.report((*at, "text"), problem)
            elif engine == "file":
                self.report(
                    (*at, "text"),
                    f"{line.speaker!r} speaks from recordings (engine 'file'); give this line `audio: path`",
                )

    def line_timing(self, line: Line, at: DocPath, index: int, previous_duration: float | None) -> None:
        given = [name for name in ("pause", "overlap", "start") if getattr(line, name) is not None]
        if len(given) > 1:
            self.report((*at, given[1]), f"use one of pause, overlap or start per line, not {' and '.join(given)}")
        if line.overlap is not None:
            if index == 0:
                self.report((*at, "overlap"), "the first line of a scene has no previous line to overlap")
            elif previous_duration is not None and line.overlap > previous_duration:
                self.report(
                    (*at, "overlap"),
                    f"overlap {line.overlap:g}s is longer than the previous line ({previous_duration:.2f}s); "
                    "an interruption starts while the previous line is still playing",
                )

    # --- placement ---------------------------------------------------------------------------------------
    def placements(self, scene: Scene, where: DocPath, image_size: tuple[int, int] | None) -> None:
        speakers = scene.on_screen_speakers()
        if len(speakers) > MAX_SPEAKERS_ON_SCREEN:
            self.report(
                (*where, "cast"),
                f"{len(speakers)} speaking characters on screen ({', '.join(speakers)}); MultiTalk drives at "
                "most two — split the scene, or make one a voice-over by removing it from cast",
            )
        for name, placement in scene.cast.items():
            self.placement(placement, (*where, "cast", name), name, image_size, alone=len(scene.cast) == 1)
        if len(speakers) == 2:
            self.pair(scene, where, speakers, image_size)

    def placement(
        self, placement: Placement, at: DocPath, name: str, image_size: tuple[int, int] | None, alone: bool
    ) -> None:
        if placement.side is None and placement.bbox is None:
            self.report(at, f"say where {name!r} stands: left, right, center or {{bbox: [x0, y0, x1, y1]}}")
            return
        if placement.side is not None and placement.bbox is not None:
            self.report(at, f"give {name!r} a side or a bbox, not both")
            return
        if placement.side == "auto":
            return  # unresolved only when the image is unreadable, which is reported already
        if placement.side == "center" and not alone:
            self.report(at, f"{name!r} is 'center' (the whole image), which only works with one person in cast")
        if placement.bbox is None:
            return
        x0, y0, x1, y1 = placement.bbox
        box = f"[{x0:g}, {y0:g}, {x1:g}, {y1:g}]"
        if x1 < x0 or y1 < y0:
            self.report((*at, "bbox"), f"bbox {box} of {name!r} is inverted: need x0 < x1 and y0 < y1")
        elif int(x1) <= int(x0) or int(y1) <= int(y0):
            self.report((*at, "bbox"), f"bbox {box} of {name!r} is empty (no whole pixel inside)")
        elif image_size is not None:
            width, height = image_size
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                self.report(
                    (*at, "bbox"),
                    f"bbox {box} of {name!r} lies outside the {width}x{height} image; "
                    "boxes are [x0, y0, x1, y1] in image pixels",
                )

    def pair(self, scene: Scene, where: DocPath, speakers: list[str], image_size: tuple[int, int] | None) -> None:
        a, b = (scene.cast[name] for name in speakers)
        if "auto" in (a.side, b.side):
            return
        if a.side is not None and a.side == b.side and a.side != "center":
            self.report(
                (*where, "cast", speakers[1]),
                f"{speakers[0]!r} and {speakers[1]!r} both stand {a.side}; put one left and one right, or use boxes",
            )
            return
        boxes = [_as_box(p, image_size) for p in (a, b)]
        if boxes[0] is None or boxes[1] is None:
            return
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes
        if min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0):
            self.report(
                (*where, "cast", speakers[1]),
                f"the boxes of {speakers[0]!r} and {speakers[1]!r} overlap; each speaker needs their own region "
                "so the model can tell whose lips follow which voice",
            )

    def run(self) -> list[Problem]:
        self.model_loras(self.screenplay.defaults.model.loras, ("defaults", "model"))
        self.characters()
        self.scenes()
        return self.problems


_INVISIBLE = {"Cf", "Zs", "Zl", "Zp", "Mn", "Me"}  # format marks (zero-width space, joiners, BOM), spaces, combiners


def _unvoiceable(text: str) -> str | None:
    """Why TTS cannot voice `text`, or None: too long, control characters, or nothing sayable once invisible
    characters are stripped (punctuation alone, zero-width spaces alone)."""
    if len(text) > limits.MAX_TEXT_CHARS:
        return (
            f"the line is {len(text):,} characters long; at most {limits.MAX_TEXT_CHARS:,} — split it into "
            "several lines"
        )
    control = next((c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n"), None)
    if control is not None:
        return f"the text contains control character U+{ord(control):04X} (a YAML escape like \\0 or \\a); remove it"
    visible = "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE and not c.isspace())
    if not visible:
        return (
            "nothing to say: the text is only invisible characters (zero-width spaces, joiners, direction marks); "
            "write words, or give `audio:`"
        )
    if not any(unicodedata.category(c)[0] in "LN" for c in visible):
        return f"nothing to say: {visible!r} has no letters or digits; write words, or give `audio:`"
    return None


def _as_box(placement: Placement, image_size: tuple[int, int] | None) -> list[float] | None:
    """A placement as a box in image pixels (sides become the image halves), for overlap tests."""
    if placement.bbox is not None:
        return list(placement.bbox)
    if image_size is None or placement.side not in ("left", "right"):
        return None
    width, height = image_size
    half = width // 2
    x0 = 0 if placement.side == "left" else half
    return [x0, 0, x0 + half, height]


def check_screenplay(
    screenplay: Screenplay, source: SourceMap, scenes: list[tuple[int, Scene]] | None = None
) -> list[Problem]:
    """Every cross-field problem; also resolves asset paths.

    `scenes` (document index, scene) lets a caller check only the scenes that passed the schema, keeping their
    positions in the document; by default every scene is checked.
    """
    indexed = scenes if scenes is not None else list(enumerate(screenplay.scenes))
    return _Checker(screenplay, source, indexed).run()
