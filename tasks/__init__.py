"""Prefect tasks, one file per render stage (`multitalk.stages`): the cache policy, retries, logging."""
