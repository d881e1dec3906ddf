"""The studio's web application: a JSON API over one folder and the static page that uses it.

Every request that names a file goes through `ProjectFolder` (inside the folder or refused with 403). The page
can write only screenplays that already exist in the folder (a save, or a box placed on the image) and the store
under `<folder>/outputs` (voices, mixes, previews); there is no upload and nothing runs a shell. Requests must
name this server as their host (a web page elsewhere cannot reach it through DNS tricks) and writes must come from
its own page (a cross-site form cannot post to it).
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from multitalk.screenplay.problems import ScreenplayError
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.store.store import Store
from studio import hearing, placement, pool
from studio.editing import ConflictError, EditError, check_text, digest, problem_json, save_text, set_cast_box
from studio.folder import OutsideFolderError, ProjectFolder
from studio.previews import Previews

logger = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class TextBody(BaseModel):
    path: str
    text: str


class SaveBody(TextBody):
    digest: str | None = None


class CastBody(SaveBody):
    scene: str
    character: str
    bbox: list[float] = Field(min_length=4, max_length=4)


class SceneBody(TextBody):
    scene: str


class LineBody(SceneBody):
    line: int


class PreviewBody(BaseModel):
    path: str
    scene: str | None = None


class SubmitBody(BaseModel):
    path: str
    deployment: str = pool.DEPLOYMENTS[0]
    renderer: str | None = None
    scenes: list[str] | None = None
    force: list[str] | None = None
    gpu: str = "h100"  # the card `multitalk plan` estimates for


class Invalid(Exception):
    """The screenplay text has problems; the page shows them instead of the result it asked for."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems


def create_app(folder: Path | str, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The studio over `folder` (only ever reading and writing inside it)."""
    project = ProjectFolder.open(folder)
    previews = Previews(project.root, project.outputs)
    app = FastAPI(title="multitalk studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.folder = project
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost"])

    @app.middleware("http")
    async def same_origin_writes(request: Request, call_next: Any) -> Response:
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            host = request.headers.get("host", "")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return JSONResponse({"error": "writes are accepted from the studio's own page only"}, 403)
            if not request.headers.get("content-type", "").startswith("application/json"):
                return JSONResponse({"error": "send JSON (Content-Type: application/json)"}, 415)
        return await call_next(request)

    @app.exception_handler(OutsideFolderError)
    async def _outside(_: Request, error: OutsideFolderError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 403)

    @app.exception_handler(FileNotFoundError)
    async def _missing(_: Request, error: FileNotFoundError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 404)

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, error: ConflictError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 409)

    @app.exception_handler(EditError)
    async def _edit(_: Request, error: EditError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 422)

    @app.exception_handler(Invalid)
    async def _invalid(_: Request, error: Invalid) -> JSONResponse:
        return JSONResponse({"error": "the screenplay has problems; fix them first", "problems": error.problems}, 422)

    @app.exception_handler(pool.PoolError)
    async def _pool(_: Request, error: pool.PoolError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 503)

    def checked(path: str, text: str) -> tuple[Path, Screenplay | None, SourceMap | None, list[dict[str, Any]]]:
        file = project.screenplay(path)
        screenplay, source, problems = check_text(file, text, project.relative(file))
        return file, screenplay, source, [problem_json(p) for p in problems]

    def valid(path: str, text: str) -> tuple[Path, Screenplay, SourceMap]:
        file, screenplay, source, problems = checked(path, text)
        if screenplay is None or source is None:
            raise Invalid(problems)
        return file, screenplay, source

    def scene_of(screenplay: Screenplay, scene_id: str) -> Scene:
        try:
            return screenplay.scene(scene_id)
        except KeyError as error:
            raise HTTPException(404, str(error.args[0])) from None

    def outline(screenplay: Screenplay | None) -> list[dict[str, Any]] | None:
        if screenplay is None:
            return None
        return [
            {
                "id": scene.id,
                "lines": [
                    {"index": i, "speaker": line.speaker, "text": line.text or f"(recording {line.audio})"}
                    for i, line in enumerate(scene.lines)
                ],
            }
            for scene in screenplay.scenes
        ]

    def url_of(path: Path) -> str:
        return f"/api/file?path={project.relative(path)}"

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/screenplays")
    def screenplays() -> dict[str, Any]:
        return {"folder": str(project.root), "screenplays": project.screenplays()}

    @app.get("/api/screenplay")
    def open_screenplay(path: str) -> dict[str, Any]:
        file = project.screenplay(path)
        text = file.read_text(encoding="utf-8")
        _, screenplay, _, problems = checked(path, text)
        return {"path": path, "text": text, "digest": digest(text), "problems": problems, "scenes": outline(screenplay)}

    @app.post("/api/check")
    def check(body: TextBody) -> dict[str, Any]:
        _, screenplay, _, problems = checked(body.path, body.text)
        return {"problems": problems, "scenes": outline(screenplay)}

    @app.post("/api/save")
    def save(body: SaveBody) -> dict[str, Any]:
        file, screenplay, _, problems = checked(body.path, body.text)
        return {"digest": save_text(file, body.text, body.digest), "problems": problems, "scenes": outline(screenplay)}

    @app.post("/api/cast")
    def place(body: CastBody) -> dict[str, Any]:
        file = project.screenplay(body.path)
        _, before, _, _ = checked(body.path, body.text)  # where loading put everyone (the automatic cast)
        placed = before.scene(body.scene).cast if before is not None and _has_scene(before, body.scene) else None
        text = set_cast_box(body.text, body.scene, body.character, body.bbox, placed)
        new_digest = save_text(file, text, body.digest)
        _, screenplay, _, problems = checked(body.path, text)
        return {"text": text, "digest": new_digest, "problems": problems, "scenes": outline(screenplay)}

    @app.post("/api/scene-picture")
    def scene_picture(body: SceneBody) -> dict[str, Any]:
        _, screenplay, _ = valid(body.path, body.text)
        scene = scene_of(screenplay, body.scene)
        picture = placement.scene_picture(screenplay, scene)
        overlay, _ = placement.mask_overlay_png(screenplay, scene, (picture["height"], picture["width"]))
        picture["image_url"] = url_of(scene.image_path)
        picture["overlay"] = "data:image/png;base64," + base64.b64encode(overlay).decode("ascii")
        return picture

    @app.post("/api/hear-line")
    def hear_line(body: LineBody) -> dict[str, Any]:
        _, screenplay, _ = valid(body.path, body.text)
        try:
            heard = hearing.hear_line(Store(project.outputs), screenplay, scene_of(screenplay, body.scene), body.line)
        except IndexError as error:
            raise HTTPException(404, str(error)) from None
        except ScreenplayError as error:
            raise Invalid([problem_json(p) for p in error.problems]) from None
        return {"url": url_of(heard.path), "seconds": heard.seconds, "voiced_now": heard.voiced_now}

    @app.post("/api/hear-scene")
    def hear_scene(body: SceneBody) -> dict[str, Any]:
        _, screenplay, source = valid(body.path, body.text)
        try:
            scene = scene_of(screenplay, body.scene)
            heard, lanes = hearing.hear_scene(Store(project.outputs), screenplay, source, scene)
        except ScreenplayError as error:
            raise Invalid([problem_json(p) for p in error.problems]) from None
        return {"url": url_of(heard.path), "seconds": heard.seconds, "timeline": lanes}

    @app.post("/api/preview")
    def start_preview(body: PreviewBody) -> dict[str, Any]:
        file = project.screenplay(body.path)
        _, screenplay, _, problems = checked(body.path, file.read_text(encoding="utf-8"))
        if screenplay is None:
            raise Invalid(problems)
        if body.scene is not None:
            scene_of(screenplay, body.scene)
        return previews.start(file, body.scene).to_json()

    @app.get("/api/preview/{job_id}")
    def preview_status(job_id: str) -> dict[str, Any]:
        job = previews.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no preview job {job_id!r}")
        return job.to_json()

    @app.get("/api/file")
    def serve(path: str) -> FileResponse:
        file, media_type = project.served(path)
        return FileResponse(file, media_type=media_type)

    @app.get("/api/pool")
    def pool_status() -> dict[str, Any]:
        return pool.pool_status()

    @app.post("/api/plan")
    def plan(body: SubmitBody) -> dict[str, Any]:
        file = project.screenplay(body.path)
        return pool.plan_estimate(file, project.root, ["--gpu", body.gpu])

    @app.post("/api/submit")
    def submit(body: SubmitBody) -> dict[str, Any]:
        file = project.screenplay(body.path)
        return pool.submit(
            body.deployment, file, project.outputs, renderer=body.renderer, scenes=body.scenes, force=body.force
        )

    @app.get("/api/runs/{run_id}")
    def run_status(run_id: str) -> dict[str, Any]:
        try:
            return pool.run_status(run_id)
        except ValueError:
            raise HTTPException(404, f"{run_id!r} is not a flow run id") from None

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _has_scene(screenplay: Screenplay, scene_id: str) -> bool:
    return any(scene.id == scene_id for scene in screenplay.scenes)
