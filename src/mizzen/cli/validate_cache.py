"""The result of `mizzen validate` for a spec that validated before, exactly as it is now.

`lookup` runs before click is imported: when the command line is a plain `validate` (`-f`,
`-e`, `-o`, `$MIZZEN_ENV`) and an entry in `.mizzen/cache/validate/` matches, it returns the
text the full validation printed, having imported neither click, pydantic nor yaml. Only a
success is stored (an error always runs the full path), under a key of the command's
meaning, the spec's bytes and path, and the interpreter; the entry holds the fingerprint of
everything else validation depended on (`mizzen.spec.deps`), re-checked at every lookup.
"""

from __future__ import annotations

import marshal
import os
import sys

from mizzen.spec import deps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from mizzen.spec.loader import Spec

    Parsed = tuple[str | None, str | None, str]

SPEC_FILE = "mizzen.yaml"
FOLDER = os.path.join(".mizzen", "cache", "validate")
_OPTIONS = {"-f": 0, "--file": 0, "-e": 1, "--env": 1, "-o": 2, "--output": 2}
invocation: list[str] | None = None  # the arguments `mizzen.cli.main.main` was given
_interpreter: list[str] = []  # as the lookup saw it, before any import could change sys.path


def parse(args: list[str]) -> Parsed | None:
    """(file as written, environment, output) of a plain `validate` command line; None for
    anything else (help, repeated or unknown options, values that look like options)."""
    if not args or args[0] != "validate":
        return None
    values: list[str | None] = [None, None, None]
    i = 1
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if eq and name.startswith("--") and name in _OPTIONS:
            i += 1
        elif args[i] in _OPTIONS and i + 1 < len(args):
            name, value = args[i], args[i + 1]
            i += 2
        else:
            return None
        slot = _OPTIONS[name]
        if values[slot] is not None or not value or value.startswith("-"):
            return None
        values[slot] = value
    file, env, output = values
    if output not in (None, "table", "json"):
        return None
    return (
        file,
        env if env is not None else (os.environ.get("MIZZEN_ENV") or None),
        output or "table",
    )


def locate(file: str | None) -> str | None:
    """The spec file the loader reads: `file`, or the nearest mizzen.yaml from here up."""
    if file is not None:
        return file
    here = os.path.realpath(os.getcwd())
    while True:
        candidate = os.path.join(here, SPEC_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def entry_name(parsed: Parsed, spec: str, spec_hash: str) -> str:
    file, env, output = parsed
    if not _interpreter:
        _interpreter.append(deps.interpreter())
    parts = [
        f"validate:{deps.FORMAT}",
        _interpreter[0],
        "\x01" if file is None else file,
        os.path.realpath(spec),
        "\x01" if env is None else env,
        output,
        spec_hash,
    ]
    key = deps.digest("\0".join(parts).encode(errors="surrogateescape"))[:32]
    return os.path.join(os.path.dirname(os.path.realpath(spec)), FOLDER, key)


def lookup(args: list[str]) -> str | None:
    """The output of the validation this command line would run, when a fresh entry holds it."""
    if not deps.enabled():
        return None
    parsed = parse(args)
    spec = locate(parsed[0]) if parsed else None
    if parsed is None or spec is None or not os.path.isfile(spec):
        return None
    try:
        with open(spec, "rb") as fh:
            name = entry_name(parsed, spec, deps.digest(fh.read()))
        with open(name, "rb") as fh:
            kind, fp, text = marshal.load(fh)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if kind != "validate" or not isinstance(text, str) or not deps.fresh(fp):
        return None
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (AttributeError, LookupError, UnicodeEncodeError):
        return None  # let click deal with an odd stdout
    return text


def store(spec_file: Path | None, env: str | None, output: str, spec: Spec, text: str) -> None:
    """Keep `text`, what a successful validation printed, for this command line; only when
    the cache's reading of the command line is the one click made."""
    args = invocation
    parsed = parse(args) if args is not None and deps.enabled() else None
    if parsed is None:
        return
    file, parsed_env, parsed_output = parsed
    written = None if file is None else os.path.normpath(file)
    given = None if spec_file is None else os.path.normpath(spec_file)
    if (written, parsed_env, parsed_output) != (given, env, output):
        return
    located = locate(file)
    if located is None or os.path.realpath(located) != os.path.realpath(spec.file):
        return
    absolute = os.path.abspath(located)
    spec_hash = spec.reads.files.get(absolute)
    fp = deps.fingerprint(spec.reads, skip=[absolute])
    if spec_hash is None or fp is None:
        return
    name = entry_name(parsed, located, spec_hash)
    deps.write_atomic(name, marshal.dumps(("validate", fp, text)))
