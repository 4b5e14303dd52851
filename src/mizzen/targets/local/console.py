"""Live output of local runs: each line prefixed and coloured by its step, secrets masked."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO

MASK = "***"
_COLOURS = ("36", "35", "33", "34", "32", "96", "95", "93", "94", "92")


SHORT = 4  # values shorter than this are masked only where they stand alone as a word
TRANSFORMED = 6  # values this long are also masked base64-, hex-, URL-encoded and reversed


def encodings(value: str) -> set[str]:
    """The common disguises of a secret value: reversed, hex, %-encoded, and base64 and
    URL-safe base64, alone (with and without padding) and inside a longer base64 text (the
    characters that depend on the value alone, at each of the three byte alignments)."""
    import base64
    import urllib.parse

    raw = value.encode()
    out = {value[::-1], raw.hex(), raw.hex().upper(), urllib.parse.quote(value, safe="")}
    for k in range(3):
        text = base64.b64encode(b"\0" * k + raw).decode()
        inner = text[-(-8 * k // 6) : 8 * (k + len(raw)) // 6]
        if k == 0:
            out |= {text, text.rstrip("=")}
        out.add(inner)
    out |= {v.replace("+", "-").replace("/", "_") for v in out}
    return {v for v in out if len(v) >= TRANSFORMED and v != value}


class Redactor:
    """Replaces every known secret value (and each line of a multi-line one) by `***`, also
    where it was reversed, hex-, %- or base64-encoded (values of 6 characters or more).

    A very short value ("s", "42") is masked only as a whole word, or every log line would be
    riddled with `***`; longer ones are masked wherever they appear. What it cannot see: a
    value split up, spelled out, encrypted, hashed, or sent somewhere else than the log."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: list[str] = []
        self._shorts: set[str] = set()
        self._short: re.Pattern[str] | None = None
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        found = set(self._values) | self._shorts
        for value in values:
            for piece in (value, *value.splitlines()):
                if piece.strip():
                    found.add(piece)
                    if len(piece) >= TRANSFORMED:
                        found |= encodings(piece)
        self._values = sorted((v for v in found if len(v) >= SHORT), key=len, reverse=True)
        self._shorts = {v for v in found if len(v) < SHORT}
        words = "|".join(map(re.escape, sorted(self._shorts, key=len, reverse=True)))
        self._short = re.compile(rf"(?<!\w)(?:{words})(?!\w)") if words else None

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        if self._short is not None:
            text = self._short.sub(MASK, text)
        return text

    @property
    def values(self) -> list[str]:
        """The values (and disguises) masked anywhere, longest first (not the short ones)."""
        return list(self._values)

    def json(self, value: Any) -> Any:
        """A JSON-like value with every string in it (keys too) masked."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(v) for v in value]
        return value

    def __bool__(self) -> bool:
        return bool(self._values) or self._short is not None


class Console:
    """Writes child output to `out` and mizzen's own notes to `err`; thread-safe."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        color: bool | None = None,
        redact: Redactor | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = self.out.isatty() if color is None else color
        self.redact = redact or Redactor()
        self._lock = threading.Lock()
        self._colours: dict[str, str] = {}
        self._width = 0

    @property
    def interactive(self) -> bool:
        """A person is watching (progress bars are worth drawing)."""
        return self.err.isatty()

    def labels(self, labels: Iterable[str]) -> None:
        """Announce the labels to come, so prefixes line up."""
        for label in labels:
            self._colour(label)

    def _colour(self, label: str) -> str:
        base = label.split("/", 1)[0]
        if base not in self._colours:
            self._colours[base] = _COLOURS[len(self._colours) % len(_COLOURS)]
        self._width = max(self._width, len(label))
        return self._colours[base]

    def line(self, label: str, text: str) -> str:
        """Print one line of a child's output; returns it masked."""
        colour = self._colour(label)
        text = self.redact(text)
        prefix = f"{label:<{self._width}} |"
        if self.color:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        with self._lock:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()
        return text

    def note(self, text: str, *, level: str = "info") -> None:
        text = self.redact(text)
        if self.err.isatty():
            code = {"ok": "32", "error": "31", "warn": "33"}.get(level, "2")
            text = f"\x1b[{code}m{text}\x1b[0m"
        with self._lock:
            self.err.write(text + "\n")
            self.err.flush()
