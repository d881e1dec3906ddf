"""The confinement rule: a page's path is a plain path inside the folder, or it is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.folder import OutsideFolderError, ProjectFolder


@pytest.fixture()
def folder(tmp_path: Path) -> ProjectFolder:
    root = tmp_path / "project"
    (root / "assets").mkdir(parents=True)
    (root / "film.yaml").write_text("title: x\n")
    (root / "prefect.yaml").write_text("name: multitalk\ndeployments: []\n")
    (root / "assets" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.yaml").write_text("title: secret\n")
    (tmp_path / "secret.png").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.png", root / "assets" / "link_out.png")
    os.symlink(tmp_path, root / "up")
    os.symlink(tmp_path / "secret.yaml", root / "linked.yaml")
    os.symlink(root / "assets" / "a.png", root / "assets" / "link_in.png")
    return ProjectFolder.open(root)


@pytest.mark.parametrize(
    "path",
    [
        "../secret.png",
        "assets/../../secret.png",
        "/etc/passwd",
        "~/secret.png",
        "assets/link_out.png",  # a symlink to a file outside
        "up/secret.png",  # through a symlinked folder
        "linked.yaml",
        "assets\\..\\..\\secret.png",
        "a.png\x00.png",
        "",
    ],
)
def test_paths_outside_the_folder_are_refused(folder: ProjectFolder, path: str) -> None:
    with pytest.raises(OutsideFolderError):
        folder.resolve(path)


def test_paths_inside_resolve(folder: ProjectFolder) -> None:
    assert folder.resolve("assets/a.png") == folder.root / "assets" / "a.png"
    assert folder.served("assets/link_in.png")[1] == "image/png"  # a symlink that stays inside is fine
    assert folder.screenplay("film.yaml") == folder.root / "film.yaml"


def test_only_media_is_served_and_only_screenplays_are_opened(folder: ProjectFolder) -> None:
    (folder.root / "notes.txt").write_text("private")
    with pytest.raises(OutsideFolderError, match="serves only"):
        folder.served("notes.txt")
    with pytest.raises(OutsideFolderError, match="not a screenplay"):
        folder.screenplay("assets/a.png")
    with pytest.raises(FileNotFoundError):
        folder.screenplay("missing.yaml")
    with pytest.raises(OutsideFolderError, match="not a screenplay"):
        folder.screenplay("prefect.yaml")  # other YAML in the folder is never opened, so never overwritten


def test_listing_skips_outputs_hidden_files_and_links_out(folder: ProjectFolder) -> None:
    (folder.root / "outputs").mkdir()
    (folder.root / "outputs" / "old.yaml").write_text("x")
    (folder.root / ".film.studio-1.yaml").write_text("x")
    (folder.root / "drafts").mkdir()
    (folder.root / "drafts" / "next.yml").write_text("scenes: []\n")
    assert folder.screenplays() == ["drafts/next.yml", "film.yaml"]
