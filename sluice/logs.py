"""Where the `sluice` command's logs go and what they look like.

On a terminal: rich's handler, for people. Anywhere else (a container, a pipe, a file) or with
`--log-json`: one JSON object per line (time, level, logger, component, sid, message, and the
traceback if any), for log collectors; `sid` is the submission the line is about (see
`bus.logcontext`). SLUICE_LOG_LEVEL (debug, info, warning, error) overrides -v.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter
from rich.logging import RichHandler

from bus.logcontext import ContextFilter
from sluice.console import ERR, CliError

LOG_LEVEL_ENV = "SLUICE_LOG_LEVEL"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def log_handler(json_lines: bool, stream: TextIO | None = None) -> logging.Handler:
    """JSON lines to `stream` (default stderr), or rich's handler on the error console."""
    if json_lines:
        handler: logging.Handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter(
            "%(levelname)s %(name)s %(component)s %(sid)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"}, timestamp="time",
        ))
    else:
        handler = RichHandler(console=ERR, show_time=False, show_path=False, markup=False)
    handler.addFilter(ContextFilter())
    return handler


def log_level(verbose: bool) -> int:
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().lower()
    if not name:
        return logging.INFO if verbose else logging.WARNING
    if name not in LEVELS:
        raise CliError(f"{LOG_LEVEL_ENV}={name!r}: expected one of {', '.join(LEVELS)}")
    return LEVELS[name]
