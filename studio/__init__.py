"""The authoring studio: a local web page over a folder of screenplays (`multitalk studio FOLDER`).

Write a screenplay with its problems shown as you type, place the cast on the scene image (with the person masks
the model will see), hear lines and scene mixes, preview scenes with the animatic renderer and send the screenplay
to a Prefect work pool. The page only ever reads and writes inside the folder it was started on.

    folder.py    the confinement rule: every path the page names resolves inside the folder, or is refused
    editing.py   problems of unsaved text, atomic saves, cast boxes written with comments kept (ruamel.yaml)
    placement.py each on-screen character's box and the latent-grid person masks as an overlay picture
    hearing.py   a line's voice and a scene's mix and timeline, through the cached voice/align stages
    previews.py  preview renders in a background thread, with progress
    pool.py      submission to a Prefect deployment, its state, chunks and report artifact; the plan estimate
    app.py       the FastAPI application (JSON API + the static page in static/)
    server.py    uvicorn on 127.0.0.1 (the `multitalk studio` command starts it)
"""
