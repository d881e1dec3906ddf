"""Stage logic the Prefect tasks call: chunk keys and rendering, scene contexts, outputs."""
