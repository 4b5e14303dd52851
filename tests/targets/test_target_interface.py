"""The Target interface: every registered target says what it does not do, and refuses a
flag it would ignore, by its name; `--target` offers what the registry has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen.errors import NotSupportedError, UsageError
from mizzen.targets.base import FLAGS, TARGETS, Options, get_target

MIZZEN = str(Path(sys.executable).parent / "mizzen")
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: t
jobs:
  hello: {command: [python, -c, "print('hi')"]}
  broken: {command: [python, -c, "import sys; print('no'); sys.exit(4)"]}
"""
OPERATIONS = ("run", "up", "logs", "status", "delete")
VALUES = {
    "image": "r.example.com/x:1",
    "namespace": "ns",
    "context": "c",
    "sets": {"K": "v"},
    "parallel": 2,
    "pending_timeout": 10.0,
    "follow": True,
    "step": "s",
    "run_secrets": {"t-once": {"k": "v"}},
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_operation_is_done_or_refused_with_a_reason(name: str) -> None:
    target = get_target(name)
    for operation in OPERATIONS:
        if operation not in target.accepts:
            with pytest.raises(NotSupportedError) as err:
                target.check(operation, Options())
            assert name in str(err.value) and target.instead(operation), operation
            continue
        target.check(operation, Options())  # plain use is accepted
        for option, flag in FLAGS.items():
            given = Options(**{option: VALUES[option]})  # type: ignore[arg-type]
            if option in target.accepts[operation]:
                target.check(operation, given)
            else:
                with pytest.raises(
                    UsageError,
                    match=f"^{flag} does not apply to `mizzen {operation}` on the {name} target",
                ):
                    target.check(operation, given)


def test_a_refusal_points_only_at_a_target_that_takes_the_flag() -> None:
    local, cluster = get_target("local"), get_target("kubernetes")
    with pytest.raises(UsageError) as err:
        local.check("run", Options(image="r.example.com/x:1"))
    assert err.value.hint == "it is for --target kubernetes"
    with pytest.raises(UsageError) as err:
        cluster.check("logs", Options(step="s"))
    assert err.value.hint == "it is for --target local"
    with pytest.raises(UsageError) as err:  # neither target's `run` follows
        local.check("run", Options(follow=True))
    assert err.value.hint == ""
    with pytest.raises(UsageError) as err:  # a cluster's status is not followed either
        cluster.check("status", Options(follow=True))
    assert err.value.hint == ""


def test_flags_mean_the_same_or_are_refused_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    cases = [
        (
            ["run", "hello", "--image", "r.example.com/x:1"],
            "--image does not apply to `mizzen run` on the local target",
        ),
        (
            ["run", "hello", "--target", "kubernetes", "--parallel", "2"],
            "--parallel does not apply to `mizzen run` on the kubernetes target",
        ),
        (
            ["data", "forget", "7", "--image", "r.example.com/x:1"],
            "--image does not apply to `mizzen data forget` on the local target",
        ),
        (
            ["signals", "compute", "daily", "-n", "team"],
            "--namespace does not apply to `mizzen signals compute` on the local target",
        ),
        (["up", "--target", "kubernetes"], "`mizzen up` is not supported on the kubernetes target"),
        (
            ["delete", "--target", "local", "--yes"],
            "`mizzen delete` is not supported on the local target",
        ),
        (
            ["logs", "hello", "--target", "kubernetes", "--step", "s"],
            "--step does not apply to `mizzen logs` on the kubernetes target",
        ),
    ]
    for argv, message in cases:
        result = subprocess.run([MIZZEN, *argv], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert message in result.stderr, (argv, result.stderr)


def test_target_choices_come_from_the_registry() -> None:
    out = subprocess.run([MIZZEN, "run", "--help"], capture_output=True, text=True).stdout
    assert "[local|kubernetes]" in out.replace("\n", "")


def test_local_status_is_each_workloads_latest_run(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(SPEC)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MIZZEN, *argv], cwd=tmp_path, capture_output=True, text=True)

    assert run("run", "hello").returncode == 0
    assert run("run", "broken").returncode == 1
    out = run("status", "--target", "local", "-o", "json")
    assert out.returncode == 0, out.stderr
    rows = {r["workload"]: r for r in json.loads(out.stdout)}
    assert rows["hello"]["phase"] == "Succeeded" and rows["hello"]["kind"] == "job"
    assert rows["broken"]["phase"] == "Failed" and "exited with code 4" in rows["broken"]["reason"]
    table = run("status", "--target", "local").stdout.splitlines()
    assert table[0].split("\t") == [
        "WORKLOAD",
        "KIND",
        "PHASE",
        "AGE",
        "RESTARTS",
        "LAST RUN",
        "REASON",
    ]
    assert table[1].startswith("hello\tjob\tSucceeded")
