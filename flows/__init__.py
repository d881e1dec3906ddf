"""Prefect flows (render a screenplay, render one scene, nightly batch, cache maintenance) and the `multitalk` CLI.

Importing this package changes nothing; the CLI calls `flows.prefect_env.configure_local_prefect()` before it
first imports Prefect.
"""
