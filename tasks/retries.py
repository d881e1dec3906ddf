"""When a failed task is worth another try: never for bad input or a full or read-only disk.

Every task's `retry_condition_fn`. A line that TTS voices as silence, or a scene its voices make too long, fails
the same way on every retry; spending retries (and their delays) on it only hides the one useful message behind
more waiting. Everything else — a flaky worker, a lost connection, an out-of-memory kill — is retried as before.
Prefect logs a failure's traceback only when retries run out, not when a condition refuses them, so the refusal
logs it here: the run's logs keep it for debugging while the CLI shows one line.
"""

from __future__ import annotations

from typing import Any

from prefect.logging import get_run_logger
from prefect.states import State

from multitalk.failures import is_retryable


def retry_unless_bad_input(task: Any, task_run: Any, state: State) -> bool:
    """Prefect's retry condition: retry unless the failure is one a retry cannot fix."""
    try:
        state.result(raise_on_failure=True)
    except Exception as error:  # the task's own exception, re-raised by the failed state
        if is_retryable(error):
            return True
        get_run_logger().error("not retried, a retry cannot fix this: %s", error, exc_info=error)
        return False
    return True
