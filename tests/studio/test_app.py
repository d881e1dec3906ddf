"""The studio's API over a folder: what the page relies on, and that nothing reaches outside the folder."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
import soundfile
from fastapi.testclient import TestClient
from PIL import Image

from studio.app import create_app


@pytest.fixture()
def client(examples: Path) -> TestClient:
    return TestClient(create_app(examples), base_url="http://127.0.0.1:8765")


def body(examples: Path, **extra: object) -> dict:
    return {"path": "two_friends.yaml", "text": (examples / "two_friends.yaml").read_text(), **extra}


def test_lists_and_opens_the_examples(client: TestClient) -> None:
    assert client.get("/api/screenplays").json()["screenplays"] == [
        "long_conversation.yaml",
        "monologue.yaml",
        "two_friends.yaml",
    ]
    opened = client.get("/api/screenplay", params={"path": "two_friends.yaml"}).json()
    assert opened["problems"] == [] and [s["id"] for s in opened["scenes"]] == ["cafe", "park", "bus-stop"]
    assert opened["scenes"][1]["lines"][0] == {
        "index": 0,
        "speaker": "mia",
        "text": "Remember our first week at university? You got chased by a goose, right over there.",
    }
    page = client.get("/")
    assert page.status_code == 200 and "studio.js" in page.text


def test_problems_as_you_type_are_located(client: TestClient, examples: Path) -> None:
    original = (examples / "two_friends.yaml").read_text()
    line = original.splitlines().index("  - id: park") + 1  # where the duplicate id is written
    text = original.replace("  - id: park", "  - id: cafe")
    problems = client.post("/api/check", json={"path": "two_friends.yaml", "text": text}).json()["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [(line, 5)]
    assert problems[0]["text"].startswith(f"two_friends.yaml:{line}:5: scenes[1].id: ")


def test_a_placed_box_is_saved_and_reported_back(client: TestClient, examples: Path) -> None:
    opened = client.get("/api/screenplay", params={"path": "two_friends.yaml"}).json()
    edit = {"digest": opened["digest"], "scene": "cafe", "character": "mia", "bbox": [30, 40, 380, 470]}
    placed = client.post("/api/cast", json={**body(examples), **edit}).json()
    on_disk = (examples / "two_friends.yaml").read_text()
    assert placed["text"] == on_disk and "      mia: {bbox: [30, 40, 380, 470]}\n      jonah: right\n" in on_disk
    stale = client.post("/api/save", json={**body(examples), "digest": opened["digest"]})
    assert stale.status_code == 409  # the page's old digest no longer matches the file


def test_the_scene_picture_has_boxes_in_colour_and_the_mask_overlay(client: TestClient, examples: Path) -> None:
    picture = client.post("/api/scene-picture", json=body(examples, scene="park")).json()
    assert (picture["width"], picture["height"], picture["bucket"]) == (832, 480, {"width": 896, "height": 448})
    assert picture["latent"] == {"rows": 56, "cols": 112} and picture["mask_problem"] is None
    cast = {c["name"]: c for c in picture["cast"]}
    assert cast["mia"]["box"] == [163, 157, 337, 480] and cast["mia"]["color"] == "#2f8f8a"
    assert cast["mia"]["person"] == 1 and cast["jonah"]["person"] == 2
    overlay = Image.open(io.BytesIO(base64.b64decode(picture["overlay"].split(",", 1)[1])))
    assert overlay.size == (832, 480) and overlay.mode == "RGBA"
    inside_mia = overlay.getpixel((250, 300))
    assert inside_mia[3] > 0 and inside_mia[:3] == (0x2F, 0x8F, 0x8A)  # Mia's cells are tinted in her colour
    assert overlay.getpixel((420, 300))[3] == 0  # the background between them stays clear
    assert client.get(picture["image_url"]).headers["content-type"] == "image/png"


def test_a_box_too_small_for_the_token_grid_is_shown_before_rendering(client: TestClient, examples: Path) -> None:
    text = body(examples)["text"].replace("mia: {bbox: [163, 157, 337, 480]}", "mia: {bbox: [163, 157, 168, 162]}")
    picture = client.post("/api/scene-picture", json={"path": "two_friends.yaml", "text": text, "scene": "park"}).json()
    assert "mask of person 1 ('mia') is empty on the (28, 56) token grid" in picture["mask_problem"]


def test_a_line_is_heard_from_the_store(client: TestClient, examples: Path) -> None:
    heard = client.post("/api/hear-line", json=body(examples, scene="cafe", line=2)).json()
    assert heard["voiced_now"] and heard["url"].startswith("/api/file?path=outputs/cache/")
    wav = client.get(heard["url"])
    assert wav.headers["content-type"] == "audio/wav"
    samples, rate = soundfile.read(io.BytesIO(wav.content))
    assert abs(len(samples) / rate - heard["seconds"]) < 0.01 and heard["seconds"] > 0.5
    again = client.post("/api/hear-line", json=body(examples, scene="cafe", line=2)).json()
    assert not again["voiced_now"] and again["url"] == heard["url"]  # cached: the same store entry


# --------------------------------------------------------------------------------------------------------
# Nothing outside the folder


@pytest.fixture()
def outside(examples: Path) -> Path:
    """A file beside the folder, and links from inside the folder to it and to its parent."""
    secret = examples.parent / "secret.yaml"
    secret.write_text(SECRET)
    (examples.parent / "secret.png").write_bytes(b"\x89PNG" + SECRET.encode())
    os.symlink(secret, examples / "linked.yaml")
    os.symlink(examples.parent / "secret.png", examples / "assets" / "linked.png")
    os.symlink(examples.parent, examples / "up")
    return secret


SECRET = "title: TOP-SECRET-CONTENT\n"
ESCAPES = ["../secret.yaml", "/etc/passwd", "linked.yaml", "up/secret.yaml", "assets/../../secret.yaml", "%2e%2e/x"]


@pytest.mark.parametrize("path", [*ESCAPES, "../secret.png", "assets/linked.png", "up/secret.png"])
def test_the_page_cannot_read_outside_its_folder(client: TestClient, outside: Path, path: str) -> None:
    for route in ("/api/file", "/api/screenplay"):
        response = client.get(route, params={"path": path})
        assert response.status_code in (403, 404), (route, path, response.text)
        assert SECRET.encode() not in response.content
        assert b"root:" not in response.content


@pytest.mark.parametrize("path", ESCAPES)
def test_the_page_cannot_write_outside_its_folder(client: TestClient, examples: Path, outside: Path, path: str) -> None:
    text = "title: overwritten\n"
    saved = client.post("/api/save", json={"path": path, "text": text})
    placed = client.post(
        "/api/cast", json={"path": path, "text": text, "scene": "s", "character": "a", "bbox": [1, 2, 3, 4]}
    )
    previewed = client.post("/api/preview", json={"path": path})
    assert {saved.status_code, placed.status_code, previewed.status_code} <= {403, 404}
    assert outside.read_text() == SECRET
    assert sorted(p.name for p in examples.parent.iterdir()) == ["films", "secret.png", "secret.yaml"]


def test_foreign_hosts_cross_site_posts_and_forms_are_refused(examples: Path) -> None:
    app = create_app(examples)
    assert TestClient(app, base_url="http://evil.example:8765").get("/api/screenplays").status_code == 400
    client = TestClient(app, base_url="http://127.0.0.1:8765")
    cross = client.post("/api/save", json=body(examples), headers={"Origin": "http://evil.example"})
    form = client.post("/api/save", content=b"path=two_friends.yaml&text=x", headers={"Content-Type": "text/plain"})
    assert (cross.status_code, form.status_code) == (403, 415)
    assert (examples / "two_friends.yaml").read_text() == body(examples)["text"]
    same = client.post("/api/save", json=body(examples), headers={"Origin": "http://127.0.0.1:8765"})
    assert same.status_code == 200


def test_without_a_prefect_api_the_pool_says_how_to_get_one(client: TestClient, monkeypatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: None}):
        status = client.get("/api/pool").json()
        assert status["api_url"] is None and "PREFECT_API_URL" in status["message"]
        refused = client.post("/api/submit", json={"path": "two_friends.yaml"})
        assert refused.status_code == 503 and "PREFECT_API_URL" in refused.json()["error"]


@pytest.mark.slow
def test_a_whole_screenplay_preview_ends_with_the_final_video(tmp_path: Path) -> None:
    import time

    from multitalk.media.probe import video_facts
    from tests.flows.conftest import ASSETS, SMALL_SCREENPLAY

    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "cafe.png").write_bytes((ASSETS / "cafe.png").read_bytes())
    (folder / "park.png").write_bytes((ASSETS / "park_bench.png").read_bytes())
    (folder / "small_talk.yaml").write_text(SMALL_SCREENPLAY)
    client = TestClient(create_app(folder), base_url="http://127.0.0.1:8765")
    job = client.post("/api/preview", json={"path": "small_talk.yaml"}).json()
    deadline = time.monotonic() + 300
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.get(f"/api/preview/{job['id']}").json()
    assert job["state"] == "done", job
    assert job["video"] == "outputs/small_talk/final.mp4" and job["chunks_done"] == job["chunks_total"] > 1
    facts = video_facts(folder / job["video"])
    assert abs(facts.frames / 25 - job["seconds"]) < 1e-6
    assert client.get(f"/api/file?path={job['video']}").headers["content-type"] == "video/mp4"


def test_the_estimate_is_multitalk_plan_for_the_chosen_card(client: TestClient) -> None:
    estimate = client.post("/api/plan", json={"path": "two_friends.yaml", "gpu": "4090"}).json()
    assert estimate["available"], estimate["text"]
    assert "4090" in estimate["text"].splitlines()[0]
    assert "GPU time" in estimate["text"] and "total" in estimate["text"]
