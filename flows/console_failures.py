"""Keep Prefect's failure reports (tracebacks, failed-state lines) off the terminal of a `multitalk render`.

The CLI prints a failed render as one located line (`multitalk.failures.describe`). Prefect's console handler
would print the same failure again with a full traceback per task, retry and flow. The filter below drops those
records on the console only: Prefect's API handler sees every record first, so the run's logs in the Prefect UI
and API keep the tracebacks for whoever debugs.
"""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler

_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine", "prefect.task_engine")


class _NoFailureReports(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.levelno >= logging.ERROR:
            return False
        failed = record.name.startswith(_RUN_LOGGERS) and "in state Failed" in record.getMessage()
        return not failed


def keep_failures_off_the_console() -> None:
    """Install the filter on Prefect's console handlers (idempotent); call once Prefect is imported."""
    loggers = [logging.getLogger(), logging.getLogger("prefect"), *map(logging.getLogger, _RUN_LOGGERS)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _NoFailureReports) for f in handler.filters
            ):
                handler.addFilter(_NoFailureReports())
