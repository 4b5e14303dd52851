"""Every validation error class: a bad spec under bad/ and the exact lines it must produce.

Each `bad/NAME.yaml` is loaded (with the environment named on a first-line `# env: NAME`
comment, if any) and must fail with exactly the problems in `bad/NAME.expected`, one
`file:line:col: field: message (hint)` line each, the file shown by its base name.
`MIZZEN_REGEN_CORPUS=1 pytest tests/spec/test_bad_corpus.py` rewrites the expected files
(review the diff before committing).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mizzen import spec
from mizzen.errors import SpecError

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def problem_lines(path: Path) -> list[str]:
    first = path.read_text().splitlines()[0]
    match = re.match(r"#\s*env:\s*(\S+)", first)
    with pytest.raises(SpecError) as caught:
        spec.load(path, match.group(1) if match else None)
    return [str(p).replace(str(path), path.name) for p in caught.value.problems]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_spec_reports_exact_problems(path: Path) -> None:
    lines = problem_lines(path)
    expected_file = path.with_suffix(".expected")
    if os.environ.get("MIZZEN_REGEN_CORPUS"):
        expected_file.write_text("\n".join(lines) + "\n")
    assert lines == expected_file.read_text().splitlines()


def test_every_case_has_expected_lines() -> None:
    assert len(CASES) >= 25
    for path in CASES:
        assert path.with_suffix(".expected").is_file(), path.name
