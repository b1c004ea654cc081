"""The launcher's and router's log lines on stdout."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any


class Logger:
    """One line per event on stdout, in tracing's compact text format or JSON (--json-output)."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output
        self._lock = threading.Lock()

    def log(
        self, level: str, message: str, target: str = "text_generation_launcher", span: str | None = None
    ) -> None:
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.json_output:
            rec: dict[str, Any] = {
                "timestamp": ts,
                "level": level,
                "fields": {"message": message},
                "target": target,
            }
            if span:
                rec["span"] = {"name": span}
            line = json.dumps(rec, ensure_ascii=False)
        else:
            line = f"{ts} {level:>5} {span + ': ' if span else ''}{target}: {message}"
        with self._lock:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass

    def info(self, message: str, **kw: Any) -> None:
        self.log("INFO", message, **kw)

    def warn(self, message: str, **kw: Any) -> None:
        self.log("WARN", message, **kw)

    def error(self, message: str, **kw: Any) -> None:
        self.log("ERROR", message, **kw)
