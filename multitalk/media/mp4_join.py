"""Joining MP4 files through their sample tables: every sample's bytes copied once, no packet muxed again.

The final video is the scene clips one after another. ffmpeg's stream copy reads and writes every packet of every
clip on each edit of any scene: 0.9-1.3 s of CPU for the 630 s long example, and more beside other work on two
cores. The clips' bytes are already what the final needs. Clips that one ffmpeg wrote with one set of encoder
settings share their sample descriptions, so a joined track is the clips' sample tables one after another, with
the chunk offsets moved. The media data is each file's `mdat` copied in one piece, by the kernel where it can
(`os.copy_file_range`).

Only the layout ffmpeg writes for our clips is joined: one `mdat` per file, no fragments, at most one edit per
track, sample groups that cover their whole track, and equal sample descriptions apart from their bit rates (which
are computed again, as ffmpeg computes them). Anything else raises `Mp4JoinUnsupported`, and the caller muxes with
ffmpeg instead.

How a part's edit is honoured: in a track with composition offsets (B-frames) the edit's media time is the shift
of the first presented frame, the same in every part, and every sample is kept. Otherwise it is the priming before
the first presented sample (AAC's warm-up packet): the first part's stays, skipped by the joined track's edit, and
the later parts' samples up to it are left out, so each part is heard from its first presented sample.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MOVIE_CHILDREN = frozenset({b"mvhd", b"trak", b"udta"})
TRACK_CHILDREN = frozenset({b"tkhd", b"edts", b"mdia"})
MEDIA_CHILDREN = frozenset({b"mdhd", b"hdlr", b"minf"})
MEDIA_HEADERS = frozenset({b"vmhd", b"smhd", b"nmhd", b"sthd"})
SAMPLE_TABLE = frozenset({b"stsd", b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stco", b"co64", b"sgpd", b"sbgp"})
VISUAL_ENTRY_FIELDS, AUDIO_ENTRY_FIELDS = 78, 28  # bytes of a sample entry before its child boxes (ISO 14496-12)
U32 = 2**32


class Mp4JoinUnsupported(ValueError):
    """The files are not laid out as this join expects (the message says how); mux them with ffmpeg instead."""


@dataclass(frozen=True)
class _Box:
    kind: bytes
    start: int
    body: int  # where the payload starts
    end: int


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[_Box]:
    end = len(data) if end is None else end
    found, offset = [], start
    while offset < end:
        if end - offset < 8:
            raise Mp4JoinUnsupported(f"a truncated box header at byte {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        body = offset + 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, body)
            body += 8
        elif size == 0:
            size = end - offset
        if size < body - offset or offset + size > end:
            raise Mp4JoinUnsupported(f"box {kind.decode('latin-1')!r} at byte {offset} overruns its parent")
        found.append(_Box(kind, offset, body, offset + size))
        offset += size
    return found


def _children(data: bytes, parent: _Box, allowed: frozenset[bytes]) -> dict[bytes, list[_Box]]:
    found: dict[bytes, list[_Box]] = {}
    for box in _boxes(data, parent.body, parent.end):
        if box.kind not in allowed:
            raise Mp4JoinUnsupported(f"an unexpected {box.kind.decode('latin-1')!r} box in {parent.kind.decode()}")
        found.setdefault(box.kind, []).append(box)
    return found


def _one(found: dict[bytes, list[_Box]], kind: bytes) -> _Box:
    boxes = found.get(kind, [])
    if len(boxes) != 1:
        raise Mp4JoinUnsupported(f"{len(boxes)} {kind.decode()} boxes where one is expected")
    return boxes[0]


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _table(data: bytes, box: _Box, columns: int, dtype: str = ">u4") -> np.ndarray:
    """A full box's `entry_count` rows of `columns` 32-bit fields (after version/flags and the count)."""
    (count,) = struct.unpack_from(">I", data, box.body + 4)
    start = box.body + 8
    if start + count * columns * 4 > box.end:
        raise Mp4JoinUnsupported(f"{box.kind.decode()} holds fewer entries than it counts")
    return np.frombuffer(data, dtype, count * columns, start).astype(np.int64).reshape(count, columns)


@dataclass(frozen=True)
class _Header:
    """mvhd, tkhd or mdhd: the times and durations this join rewrites, the rest kept as it is."""

    kind: bytes
    flags: int
    created: int
    modified: int
    ident: int  # mvhd, mdhd: the timescale; tkhd: the track ID
    duration: int
    rest: bytes

    @classmethod
    def read(cls, data: bytes, box: _Box) -> _Header:
        version, flags = data[box.body], int.from_bytes(data[box.body + 1 : box.body + 4], "big")
        wide = version == 1
        created, modified, ident = struct.unpack_from(">QQI" if wide else ">III", data, box.body + 4)
        at = box.body + 4 + (20 if wide else 12) + (4 if box.kind == b"tkhd" else 0)
        (duration,) = struct.unpack_from(">Q" if wide else ">I", data, at)
        return cls(box.kind, flags, created, modified, ident, duration, data[at + (8 if wide else 4) : box.end])

    def write(self, ident: int | None = None, duration: int | None = None, rest: bytes | None = None) -> bytes:
        ident = self.ident if ident is None else ident
        duration = self.duration if duration is None else duration
        wide = max(self.created, self.modified, duration) >= U32
        times = struct.pack(">QQI" if wide else ">III", self.created, self.modified, ident)
        reserved = b"\0\0\0\0" if self.kind == b"tkhd" else b""
        length = struct.pack(">Q" if wide else ">I", duration)
        return _full_box(self.kind, int(wide), self.flags, times, reserved, length, self.rest if rest is None else rest)


@dataclass(frozen=True)
class _Track:
    """One track of one file: what is copied as it is, and its sample tables as arrays (one row per sample)."""

    tkhd: _Header
    mdhd: _Header
    hdlr: bytes  # these four boxes as they are
    media_header: bytes
    dinf: bytes
    stsd: bytes
    handler: bytes
    edited: bool  # whether it has an edit list
    media_time: int  # where its one edit starts, in media time (0 without an edit)
    deltas: np.ndarray
    composition: np.ndarray | None  # ctts offsets per sample
    ctts_version: int
    sync: np.ndarray | None  # 0-based sync samples; None: every sample is one
    sizes: np.ndarray
    chunk_offsets: np.ndarray  # in the file
    chunk_counts: np.ndarray  # samples per chunk
    groups: tuple[bytes, bytes] | None  # (sgpd box, sbgp header) of a group covering every sample


def _track(data: bytes, trak: _Box) -> _Track:
    parts = _children(data, trak, TRACK_CHILDREN)
    tkhd = _Header.read(data, _one(parts, b"tkhd"))
    media = _children(data, _one(parts, b"mdia"), MEDIA_CHILDREN)
    mdhd = _Header.read(data, _one(media, b"mdhd"))
    hdlr = _one(media, b"hdlr")
    info = _children(data, _one(media, b"minf"), MEDIA_HEADERS | {b"dinf", b"stbl"})
    headers = [box for kind in sorted(MEDIA_HEADERS) for box in info.get(kind, [])]
    if len(headers) != 1:
        raise Mp4JoinUnsupported("a track without exactly one media header")
    dinf = _one(info, b"dinf")
    table = _children(data, _one(info, b"stbl"), SAMPLE_TABLE)

    media_time = 0
    if b"edts" in parts:
        edits = _boxes(data, _one(parts, b"edts").body, _one(parts, b"edts").end)
        if len(edits) != 1 or edits[0].kind != b"elst":
            raise Mp4JoinUnsupported("an edit box other than one edit list")
        elst = edits[0]
        wide = data[elst.body] == 1
        (count,) = struct.unpack_from(">I", data, elst.body + 4)
        if count != 1:
            raise Mp4JoinUnsupported(f"a track with {count} edits")
        _, media_time, rate = struct.unpack_from(">Qqi" if wide else ">Iii", data, elst.body + 8)
        if media_time < 0 or rate != 0x10000:
            raise Mp4JoinUnsupported("an empty or re-timed edit")

    stts = _table(data, _one(table, b"stts"), 2)
    deltas = np.repeat(stts[:, 1], stts[:, 0])
    composition, ctts_version = None, 0
    if b"ctts" in table:
        ctts_box = _one(table, b"ctts")
        ctts_version = data[ctts_box.body]
        ctts = _table(data, ctts_box, 2, ">i4" if ctts_version == 1 else ">u4")
        composition = np.repeat(ctts[:, 1], ctts[:, 0])
    sync = _table(data, _one(table, b"stss"), 1)[:, 0] - 1 if b"stss" in table else None

    stsz = _one(table, b"stsz")
    sample_size, count = struct.unpack_from(">II", data, stsz.body + 4)
    if sample_size:
        sizes = np.full(count, sample_size, np.int64)
    else:
        sizes = np.frombuffer(data, ">u4", count, stsz.body + 12).astype(np.int64)
    if b"stco" in table:
        chunk_offsets = _table(data, _one(table, b"stco"), 1)[:, 0]
    else:
        chunk_offsets = np.frombuffer(data, ">u8", *_counted(data, _one(table, b"co64"))).astype(np.int64)
    stsc = _table(data, _one(table, b"stsc"), 3)
    if np.any(stsc[:, 2] != 1) or stsc.size == 0 or stsc[0, 0] != 1:
        raise Mp4JoinUnsupported("chunks with more than one sample description")
    runs = np.diff(np.append(stsc[:, 0], chunk_offsets.size + 1))
    chunk_counts = np.repeat(stsc[:, 1], runs)

    if not (deltas.size == sizes.size == int(chunk_counts.sum())) or np.any(chunk_counts <= 0):
        raise Mp4JoinUnsupported("sample tables that disagree on the number of samples")
    if composition is not None and composition.size != sizes.size:
        raise Mp4JoinUnsupported("composition offsets that disagree on the number of samples")

    groups = None
    if b"sgpd" in table or b"sbgp" in table:
        sgpd, sbgp = _one(table, b"sgpd"), _one(table, b"sbgp")
        header = 8 + (4 if data[sbgp.body] == 1 else 0)  # version/flags, grouping type (and its parameter)
        (entries,) = struct.unpack_from(">I", data, sbgp.body + header)
        covered, index = struct.unpack_from(">II", data, sbgp.body + header + 4)
        if entries != 1 or covered != sizes.size or index != 1:
            raise Mp4JoinUnsupported("a sample group that does not cover its whole track")
        groups = (data[sgpd.start : sgpd.end], data[sbgp.body : sbgp.body + header])

    return _Track(
        tkhd=tkhd,
        mdhd=mdhd,
        hdlr=data[hdlr.start : hdlr.end],
        media_header=data[headers[0].start : headers[0].end],
        dinf=data[dinf.start : dinf.end],
        stsd=data[_one(table, b"stsd").start : _one(table, b"stsd").end],
        handler=data[hdlr.body + 8 : hdlr.body + 12],
        edited=b"edts" in parts,
        media_time=media_time,
        deltas=deltas,
        composition=composition,
        ctts_version=ctts_version,
        sync=sync,
        sizes=sizes,
        chunk_offsets=chunk_offsets,
        chunk_counts=chunk_counts,
        groups=groups,
    )


def _counted(data: bytes, box: _Box) -> tuple[int, int]:
    (count,) = struct.unpack_from(">I", data, box.body + 4)
    if box.body + 8 + count * 8 > box.end:
        raise Mp4JoinUnsupported("co64 holds fewer entries than it counts")
    return count, box.body + 8


def _bit_rate_fields(stsd: bytes, handler: bytes) -> list[int]:
    """Where the (max, average) bit rate pairs sit in a sample description: in btrt and in esds's decoder config.

    They describe one file's stream; the joined stream's are computed again.
    """
    fields = []
    skip = {b"vide": VISUAL_ENTRY_FIELDS, b"soun": AUDIO_ENTRY_FIELDS}.get(handler)
    for entry in _boxes(stsd, 16):
        if skip is None:
            continue
        for child in _boxes(stsd, entry.body + skip, entry.end):
            if child.kind == b"btrt":
                fields.append(child.body + 4)
            elif child.kind == b"esds":
                fields.extend(_decoder_config_rates(stsd, child.body + 4, child.end))
    return fields


def _decoder_config_rates(data: bytes, at: int, end: int) -> list[int]:
    """The bit rates' offset in an ES descriptor (tag 3) whose decoder config (tag 4) follows its header."""

    def descriptor(position: int) -> tuple[int, int, int]:
        tag, length, position = data[position], 0, position + 1
        for _ in range(4):
            byte = data[position]
            length, position = (length << 7) | (byte & 0x7F), position + 1
            if not byte & 0x80:
                break
        return tag, length, position

    tag, _, body = descriptor(at)
    if tag != 3:
        return []
    flags = data[body + 2]
    body += 3 + (2 if flags & 0x80 else 0) + (1 + data[body + 3] if flags & 0x40 else 0) + (2 if flags & 0x20 else 0)
    tag, _, config = descriptor(body)
    return [config + 5] if tag == 4 and config + 13 <= end else []


def _without_rates(track: _Track) -> bytes:
    stsd = bytearray(track.stsd)
    for at in _bit_rate_fields(track.stsd, track.handler):
        stsd[at : at + 8] = bytes(8)
    return bytes(stsd)


@dataclass(frozen=True)
class _File:
    path: Path
    ftyp: bytes
    moov: bytes
    media: tuple[int, int]  # the mdat payload's [start, end) in the file

    @classmethod
    def read(cls, path: Path) -> _File:
        ftyp = moov = b""
        media: list[tuple[int, int]] = []
        with path.open("rb") as stream:
            total, offset = os.fstat(stream.fileno()).st_size, 0
            while offset < total:
                stream.seek(offset)
                header = stream.read(16)
                if len(header) < 8:
                    raise Mp4JoinUnsupported(f"{path.name}: a truncated box at byte {offset}")
                size, kind = struct.unpack_from(">I4s", header)
                head = 8
                if size == 1:
                    (size,) = struct.unpack_from(">Q", header, 8)
                    head = 16
                elif size == 0:
                    size = total - offset
                if size < head or offset + size > total:
                    raise Mp4JoinUnsupported(f"{path.name}: box {kind!r} at byte {offset} runs past the file")
                if kind in (b"ftyp", b"moov"):
                    stream.seek(offset)
                    content = stream.read(size)
                    ftyp, moov = (content, moov) if kind == b"ftyp" else (ftyp, content)
                elif kind == b"mdat":
                    media.append((offset + head, offset + size))
                elif kind in (b"moof", b"mfra", b"sidx"):
                    raise Mp4JoinUnsupported(f"{path.name} is fragmented")
                offset += size
        if not ftyp or not moov or len(media) != 1:
            raise Mp4JoinUnsupported(f"{path.name}: not one ftyp, one moov and one mdat")
        return cls(path, ftyp, moov, media[0])

    def movie(self) -> tuple[_Header, list[_Track], bytes]:
        """The movie header, the tracks, and the movie's udta box (empty when it has none)."""
        moov = _boxes(self.moov)[0]
        parts = _children(self.moov, moov, MOVIE_CHILDREN)
        udta = b"".join(self.moov[box.start : box.end] for box in parts.get(b"udta", []))
        tracks = [_track(self.moov, trak) for trak in parts.get(b"trak", [])]
        for track in tracks:
            ends = track.chunk_offsets + np.add.reduceat(track.sizes, _chunk_starts(track.chunk_counts))
            if track.chunk_offsets.size and (track.chunk_offsets.min() < self.media[0] or ends.max() > self.media[1]):
                raise Mp4JoinUnsupported(f"{self.path.name}: samples outside its mdat")
        return _Header.read(self.moov, _one(parts, b"mvhd")), tracks, udta


def _chunk_starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


@dataclass(frozen=True)
class _Part:
    track: _Track
    shift: int  # added to its chunk offsets: where its file's media data lands in the output's mdat, less where it was


@dataclass(frozen=True)
class _Samples:
    """A joined track's sample tables, one row per sample (chunks: one row per chunk)."""

    deltas: np.ndarray
    sizes: np.ndarray
    composition: np.ndarray | None
    sync: np.ndarray | None
    chunk_offsets: np.ndarray  # in the output's mdat payload
    chunk_counts: np.ndarray


def _priming(part: _Track) -> int:
    """How many leading samples a later part leaves out: those before its edit, in a track without B-frames."""
    if part.composition is not None or not part.media_time:
        return 0
    elapsed = np.cumsum(part.deltas)
    drop = int(np.searchsorted(elapsed, part.media_time)) + 1
    if drop > elapsed.size or elapsed[drop - 1] != part.media_time:
        raise Mp4JoinUnsupported("an edit that does not start on a sample")
    return drop


def _join_samples(parts: Sequence[_Part]) -> _Samples:
    deltas, sizes, compositions, syncs, offsets, counts = [], [], [], [], [], []
    joined = 0
    for index, part in enumerate(parts):
        track = part.track
        drop = _priming(track) if index else 0
        chunk_offsets, chunk_counts = track.chunk_offsets + part.shift, track.chunk_counts.copy()
        first_chunk, left = 0, drop
        while left:  # the dropped samples are the first chunks' first samples
            if chunk_counts[first_chunk] <= left:
                left -= int(chunk_counts[first_chunk])
                first_chunk += 1
            else:
                start = int(track.chunk_counts[:first_chunk].sum())
                chunk_offsets[first_chunk] += int(track.sizes[start:drop].sum())
                chunk_counts[first_chunk] -= left
                left = 0
        deltas.append(track.deltas[drop:])
        sizes.append(track.sizes[drop:])
        if track.composition is not None:
            compositions.append(track.composition[drop:])
        sync = track.sync if track.sync is not None else np.arange(track.sizes.size)
        syncs.append(sync[sync >= drop] - drop + joined)
        offsets.append(chunk_offsets[first_chunk:])
        counts.append(chunk_counts[first_chunk:])
        joined += track.sizes.size - drop
    return _Samples(
        deltas=np.concatenate(deltas),
        sizes=np.concatenate(sizes),
        composition=np.concatenate(compositions) if compositions else None,
        sync=None if all(part.track.sync is None for part in parts) else np.concatenate(syncs),
        chunk_offsets=np.concatenate(offsets),
        chunk_counts=np.concatenate(counts),
    )


def _check_joinable(parts: Sequence[_Part], names: Sequence[str]) -> None:
    first = parts[0].track
    for part, name in zip(parts[1:], names[1:], strict=True):
        track = part.track
        same = (
            track.handler == first.handler
            and track.mdhd.ident == first.mdhd.ident
            and (track.hdlr, track.media_header, track.dinf) == (first.hdlr, first.media_header, first.dinf)
            and _without_rates(track) == _without_rates(first)
        )
        if not same:
            raise Mp4JoinUnsupported(f"{name}: its {first.handler.decode()} track is described unlike the first's")
        if (track.composition is None) != (first.composition is None) or track.ctts_version != first.ctts_version:
            raise Mp4JoinUnsupported(f"{name}: composition offsets unlike the first's")
        if track.composition is not None and track.media_time != first.media_time:
            raise Mp4JoinUnsupported(f"{name}: its frames are shifted unlike the first's")
        if (track.groups is None) != (first.groups is None) or (track.groups and track.groups != first.groups):
            raise Mp4JoinUnsupported(f"{name}: sample groups unlike the first's")
        if track.edited != first.edited:
            raise Mp4JoinUnsupported(f"{name}: an edit list where the first has none, or none where it has one")


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths and values of `values` (stts, ctts, stsc are run-length tables)."""
    if values.size == 0:
        return values, values
    starts = np.concatenate(([0], np.flatnonzero(np.diff(values)) + 1))
    return np.diff(np.append(starts, values.size)), values[starts]


def _rows(kind: bytes, columns: Sequence[np.ndarray], dtype: str = ">u4", version: int = 0) -> bytes:
    rows = np.column_stack(columns) if len(columns) > 1 else np.asarray(columns[0])
    count = len(columns[0])
    return _full_box(kind, version, 0, struct.pack(">I", count), np.ascontiguousarray(rows).astype(dtype).tobytes())


def _sample_table(first: _Track, samples: _Samples, base: int, wide: bool) -> bytes:
    duration = int(samples.deltas.sum())
    average = int(samples.sizes.sum()) * 8 * first.mdhd.ident // duration if duration else 0
    stsd = bytearray(first.stsd)
    for at in _bit_rate_fields(first.stsd, first.handler):
        stsd[at : at + 8] = struct.pack(">II", min(average, U32 - 1), min(average, U32 - 1))
    boxes = [bytes(stsd), _rows(b"stts", _runs(samples.deltas))]
    if samples.sync is not None:
        boxes.append(_rows(b"stss", [samples.sync + 1]))
    if samples.composition is not None:
        counts, values = _runs(samples.composition)
        signed = first.ctts_version == 1
        boxes.append(_rows(b"ctts", [counts, values], ">i4" if signed else ">u4", first.ctts_version))
    counts, values = _runs(samples.chunk_counts)
    first_chunks = np.concatenate(([1], np.cumsum(counts)[:-1] + 1))
    boxes.append(_rows(b"stsc", [first_chunks, values, np.ones_like(values)]))
    sizes = samples.sizes
    if sizes.size and np.all(sizes == sizes[0]):
        boxes.append(_full_box(b"stsz", 0, 0, struct.pack(">II", int(sizes[0]), sizes.size)))
    else:
        boxes.append(_full_box(b"stsz", 0, 0, struct.pack(">II", 0, sizes.size), sizes.astype(">u4").tobytes()))
    offsets = samples.chunk_offsets + base
    boxes.append(_rows(b"co64", [offsets], ">u8") if wide else _rows(b"stco", [offsets]))
    if first.groups is not None:
        sgpd, sbgp_header = first.groups
        boxes.extend([sgpd, _box(b"sbgp", sbgp_header, struct.pack(">III", 1, sizes.size, 1))])
    return _box(b"stbl", *boxes)


def _track_box(first: _Track, samples: _Samples, track_id: int, movie_scale: int, base: int, wide: bool) -> bytes:
    media_duration = int(samples.deltas.sum())
    presented = media_duration if samples.composition is not None else media_duration - first.media_time
    duration = (presented * movie_scale + first.mdhd.ident // 2) // first.mdhd.ident
    boxes = [first.tkhd.write(ident=track_id, duration=duration)]
    if first.edited:
        long = duration >= U32 or first.media_time >= 2**31
        entry = struct.pack(">Qqi" if long else ">Iii", duration, first.media_time, 0x10000)
        boxes.append(_box(b"edts", _full_box(b"elst", int(long), 0, struct.pack(">I", 1), entry)))
    minf = _box(b"minf", first.media_header, first.dinf, _sample_table(first, samples, base, wide))
    boxes.append(_box(b"mdia", first.mdhd.write(duration=media_duration), first.hdlr, minf))
    return _box(b"trak", *boxes)


def _copy(source: Path, start: int, end: int, target: BinaryIO) -> None:
    """Bytes [start, end) of `source` appended to `target` (an unbuffered file): a kernel copy where it can."""
    with source.open("rb") as stream:
        position = start
        try:
            while position < end:
                copied = os.copy_file_range(stream.fileno(), target.fileno(), end - position, position)
                if copied == 0:
                    break
                position += copied
        except (AttributeError, OSError):  # no copy_file_range here, or not between these file systems
            pass
        stream.seek(position)
        remaining = end - position
        while remaining:
            block = stream.read(min(remaining, 1 << 22))
            if not block:
                raise Mp4JoinUnsupported(f"{source.name} ended while it was copied")
            target.write(block)
            remaining -= len(block)


def join_mp4(sequence: Sequence[Path], out: Path, *, beside: Sequence[Path] = ()) -> None:
    """Write `out`: the files of `sequence` played one after another, track by track, and the tracks of the
    `beside` files (e.g. subtitles for the whole) played from the start.

    The movie is laid out for streaming (`moov` first). Raises `Mp4JoinUnsupported` before writing anything when
    the files are not laid out as this join expects.
    """
    files = [_File.read(Path(path)) for path in sequence]
    extras = [_File.read(Path(path)) for path in beside]
    if not files:
        raise Mp4JoinUnsupported("nothing to join")
    movies = [file.movie() for file in files]
    extra_movies = [file.movie() for file in extras]
    mvhd, udta = movies[0][0], movies[0][2]
    if any(movie[0].ident != mvhd.ident for movie in movies + extra_movies):
        raise Mp4JoinUnsupported("movie timescales differ")
    layout = [track.handler for track in movies[0][1]]
    for file, (_, tracks, _) in zip(files, movies, strict=True):
        if [track.handler for track in tracks] != layout:
            raise Mp4JoinUnsupported(f"{file.path.name}: its tracks are not the first file's")

    shifts, payload = {}, 0
    for file in extras + files:  # the small tracks beside first: a player streaming the file has them at once
        shifts[file.path] = payload - file.media[0]
        payload += file.media[1] - file.media[0]
    names = [file.path.name for file in files]
    joined = []
    for index in range(len(layout)):
        parts = [_Part(tracks[index], shifts[file.path]) for file, (_, tracks, _) in zip(files, movies, strict=True)]
        _check_joinable(parts, names)
        joined.append((parts[0].track, _join_samples(parts)))
    for file, (_, tracks, _) in zip(extras, extra_movies, strict=True):
        joined.extend((track, _join_samples([_Part(track, shifts[file.path])])) for track in tracks)

    def movie_box(base: int, wide: bool) -> bytes:
        traks, durations = [], [0]
        for track_id, (first, samples) in enumerate(joined, start=1):
            trak = _track_box(first, samples, track_id, mvhd.ident, base, wide)
            traks.append(trak)
            durations.append(_Header.read(trak, _boxes(trak, 8)[0]).duration)
        header = mvhd.write(duration=max(durations), rest=mvhd.rest[:-4] + struct.pack(">I", len(joined) + 1))
        return _box(b"moov", header, *traks, udta)

    ftyp = files[0].ftyp
    mdat_header = (
        struct.pack(">I4s", 8 + payload, b"mdat")
        if payload + 8 < U32
        else struct.pack(">I4sQ", 1, b"mdat", 16 + payload)
    )
    wide = len(ftyp) + len(movie_box(0, False)) + len(mdat_header) + payload >= U32
    base = len(ftyp) + len(movie_box(0, wide)) + len(mdat_header)
    moov = movie_box(base, wide)
    with Path(out).open("wb", buffering=0) as target:
        target.write(ftyp + moov + mdat_header)
        for file in extras + files:
            _copy(file.path, *file.media, target)
