"""The errors of the datasets layer (on the project's small hierarchy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mizzen.errors import EXIT_FAILED, MizzenError, UsageError

if TYPE_CHECKING:
    from mizzen.datasets.contract import ContractReport


class DatasetError(MizzenError):
    """A dataset operation failed in a way the user must act on."""

    exit_code = EXIT_FAILED


class DatasetNotFound(UsageError):
    """No such dataset, version or time in its history."""


class ContractViolation(DatasetError):
    """What a run wrote does not match the declared schema: nothing was committed."""

    def __init__(self, report: ContractReport) -> None:
        reasons = report.reasons()
        head = f"{report.dataset or 'outputs'}: the output breaks the declared schema, nothing was committed"
        super().__init__(
            head + "".join(f"\n  {r}" for r in reasons),
            hint="fix the job's output, or change the dataset's schema in mizzen.yaml",
        )
        self.report = report
        self.reasons = reasons
