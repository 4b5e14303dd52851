"""Jobs and pipelines on the local target: ordering, parallelism, failures, retries, timeouts,
resources, volumes and the run record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mizzen.errors import UsageError

from .conftest import Make, plan_of, run_local

# A step that writes its start/end times and, when asked, waits for another step to have started.
STAMP = """
import json, os, sys, time, pathlib
name, wait_for = sys.argv[1], sys.argv[2:]
marks = pathlib.Path(os.environ["MARKS"])
marks.mkdir(exist_ok=True)
(marks / f"{name}.start").write_text(repr(time.time()))
deadline = time.time() + 30
while wait_for and not all((marks / f"{w}.start").exists() for w in wait_for):
    if time.time() > deadline:
        sys.exit(f"{name}: {wait_for} never started while I ran")
    time.sleep(0.02)
(marks / f"{name}.end").write_text(repr(time.time()))
"""


def _times(root: Path, name: str) -> tuple[float, float]:
    marks = root / "marks"
    return float((marks / f"{name}.start").read_text()), float((marks / f"{name}.end").read_text())


def test_pipeline_runs_in_dependency_order_with_independent_steps_overlapping(
    project: Make,
) -> None:
    root = project(
        """
        config: {MARKS: marks}
        jobs:
          a: {command: [$PY, stamp.py, a, b]}
          b: {command: [$PY, stamp.py, b, a]}
          c: {command: [$PY, stamp.py, c]}
        pipelines:
          p: {steps: [c-after, a, b], parallelism: 2}
        """.replace("c-after", "{job: c, after: [a, b]}"),
        {"stamp.py": STAMP},
    )
    res = run_local(root, "p")
    assert res.code == 0, res.err
    a, b, c = (_times(root, n) for n in "abc")
    # a waited for b to start and b for a: both were running at the same time
    assert a[0] < b[1] and b[0] < a[1]
    assert c[0] >= max(a[1], b[1])
    assert [s.status for s in res.record.steps] == ["succeeded"] * 3
    assert res.record.kind == "pipeline" and res.record.status == "succeeded"


def test_parallel_one_runs_steps_one_after_another(project: Make) -> None:
    root = project(
        """
        config: {MARKS: marks}
        jobs:
          a: {command: [$PY, stamp.py, a]}
          b: {command: [$PY, stamp.py, b]}
        pipelines:
          p: {steps: [a, b]}
        """,
        {"stamp.py": STAMP},
    )
    assert run_local(root, "p", parallel=1).code == 0
    (a0, a1), (b0, b1) = _times(root, "a"), _times(root, "b")
    assert a1 <= b0 or b1 <= a0


def test_failed_step_skips_its_dependants_and_the_rest_finish(project: Make) -> None:
    root = project(
        """
        jobs:
          bad: {command: [sh, -c, "echo boom; exit 3"]}
          ok: {command: [sh, -c, "echo fine"]}
          after-bad: {command: [sh, -c, "echo never"]}
          later: {command: [sh, -c, "echo never"]}
          after-ok: {command: [sh, -c, "echo also fine"]}
        pipelines:
          p:
            steps:
              - bad
              - ok
              - {job: after-bad, after: [bad]}
              - {job: later, after: [after-bad, ok]}
              - {job: after-ok, after: [ok]}
        """
    )
    res = run_local(root, "p")
    assert res.code == 1
    status = {s.name: (s.status, s.reason) for s in res.record.steps}
    assert status["bad"] == ("failed", "exited with code 3")
    assert status["ok"][0] == status["after-ok"][0] == "succeeded"
    assert status["after-bad"] == ("skipped", "not run because step 'bad' failed")
    assert status["later"] == ("skipped", "not run because step 'after-bad' was skipped")
    assert res.record.status == "failed"
    assert res.record.reason == "step bad exited with code 3"
    assert "never" not in res.out


def test_retries_with_backoff_until_success(project: Make) -> None:
    script = """
    import pathlib, sys
    count = pathlib.Path("count")
    n = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(n))
    print("attempt", n)
    sys.exit(0 if n == 3 else 1)
    """
    root = project(
        "jobs:\n  flaky: {command: [$PY, flaky.py], retries: 2, retryDelay: 50ms}\n",
        {"flaky.py": script},
    )
    res = run_local(root, "flaky")
    assert res.code == 0
    step = res.step("flaky")
    assert (step.status, step.attempts) == ("succeeded", 3)
    assert "retrying in 50ms" in res.err and "retrying in 100ms" in res.err
    assert res.log("flaky").splitlines() == ["attempt 1", "attempt 2", "attempt 3"]


def test_retries_exhausted_fail_the_job(project: Make) -> None:
    root = project("jobs:\n  bad: {command: [sh, -c, 'exit 4'], retries: 1, retryDelay: 10ms}\n")
    res = run_local(root, "bad")
    assert res.code == 1
    assert res.step("bad").attempts == 2
    assert res.record.reason == "bad exited with code 4 (attempt 2 of 2)"


def test_timeout_kills_the_process_group(project: Make) -> None:
    root = project(
        "jobs:\n  slow: {command: [sh, -c, 'sleep 60 & echo $! > child.pid; sleep 60'], timeout: 1s}\n"
    )
    res = run_local(root, "slow", grace=0.5)
    assert res.code == 1
    assert res.record.reason == "slow timed out after 1s"
    from .conftest import alive

    assert not alive(int((root / "child.pid").read_text()))


def test_memory_limit_is_enforced(project: Make) -> None:
    hog = "import time\nblock = b'x' * (300 * 1024 * 1024)\nprint('allocated', flush=True)\ntime.sleep(30)\n"
    root = project(
        "jobs:\n  hog: {command: [$PY, hog.py], resources: {memory: 100Mi}}\n", {"hog.py": hog}
    )
    res = run_local(root, "hog")
    assert res.code == 1
    assert res.record.reason == (
        "hog ran out of memory at its limit of 100Mi (stopped by mizzen's memory watchdog); "
        "raise resources.memory"
    )


def test_cpu_sets_thread_counts_unless_the_job_sets_them(project: Make) -> None:
    root = project(
        """
        jobs:
          half: {command: [sh, -c, 'echo $OMP_NUM_THREADS $MKL_NUM_THREADS $OPENBLAS_NUM_THREADS'], resources: {cpu: 500m}}
          two: {command: [sh, -c, 'echo $OMP_NUM_THREADS $MKL_NUM_THREADS'], resources: {cpu: "1.5"}, env: {MKL_NUM_THREADS: "7"}}
        """
    )
    assert run_local(root, "half").log("half").strip() == "1 1 1"
    assert run_local(root, "two").log("two").strip() == "2 7"


def test_a_gpu_job_is_refused_before_it_starts_when_there_is_no_gpu(project: Make) -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    root = project("jobs:\n  train: {command: [sh, -c, 'touch started'], resources: {gpu: 1}}\n")
    with pytest.raises(UsageError, match="needs 1 GPU, none found on this machine"):
        run_local(root, "train")
    assert not (root / "started").exists()


def test_run_references_env_and_outputs(project: Make) -> None:
    job = """
    import json, os, pathlib, sys
    import mizzen
    out = pathlib.Path(sys.argv[2])
    (out / "report.txt").write_text("hello")
    (mizzen.outputs_dir() / "sub").mkdir()
    (mizzen.outputs_dir() / "sub" / "x.json").write_text("{}")
    mizzen.log_param("lr", 0.1)
    mizzen.log_metric("loss", 0.5, step=1)
    mizzen.log_metric("loss", 0.25, step=2)
    print(sys.argv[1], os.environ["TAG"], os.environ["MIZZEN_TARGET"], mizzen.run_id() == sys.argv[1])
    """
    root = project(
        """
        config: {LR: "0.1"}
        jobs:
          j:
            command: [$PY, job.py, "${run.id}", "${run.outputs}"]
            env: {TAG: "day-${run.date}"}
        """,
        {"job.py": job},
    )
    res = run_local(root, "j", sets={"LR": "0.2"})
    assert res.code == 0, res.err
    rec = res.record
    run_id, tag, target, same = res.log("j").split()
    assert (run_id, target, same) == (rec.id, "local", "True")
    assert tag.startswith("day-20") and len(tag) == len("day-2026-01-01")
    assert rec.params == {"LR": "0.2", "lr": 0.1}
    assert rec.metrics == {"loss": 0.25}
    assert [m.value for m in res.runs.metrics(rec)] == [0.5, 0.25]
    assert sorted(rec.outputs) == ["report.txt", "sub/x.json"]
    assert res.runs.store.read_bytes(f"{rec.prefix}/outputs/report.txt") == b"hello"
    assert res.runs.is_done(rec)
    assert not (root / ".mizzen" / "runs-staging" / rec.id).exists()


def test_record_has_git_sha_digest_user_and_host(project: Make) -> None:
    root = project("jobs:\n  j: {command: [sh, -c, 'echo hi']}\n")
    assert run_local(root, "j").record.git_sha is None
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "mizzen.yaml"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=root, check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    rec = run_local(root, "j").record
    assert rec.git_sha == sha
    assert rec.spec_digest == plan_of(root).spec_digest
    assert rec.user and rec.host and rec.trigger == "manual" and rec.target == "local"
    raw = json.loads((root / ".mizzen" / "store" / "runs" / "j" / rec.id / "run.json").read_text())
    assert raw["status"] == "succeeded" and raw["steps"][0]["exit_code"] == 0


def test_blob_volume_written_back_only_after_success(project: Make) -> None:
    root = project(
        """
        stores: {lake: s3://bucket}
        volumes:
          out: {blob: lake/out}
        jobs:
          good: {command: [sh, -c, 'echo ok > ${volumes.out}/good.txt']}
          bad: {command: [sh, -c, 'echo no > ${volumes.out}/bad.txt; exit 1']}
        """
    )
    assert run_local(root, "good").code == 0
    assert run_local(root, "bad").code == 1
    lake = root / ".mizzen" / "stores" / "lake" / "out"
    assert (lake / "good.txt").read_text() == "ok\n"
    assert not (lake / "bad.txt").exists()


def test_working_dir_is_relative_to_the_project(project: Make) -> None:
    root = project("jobs:\n  j: {command: [sh, -c, pwd], workingDir: sub}\n", {"sub/keep": ""})
    assert run_local(root, "j").log("j").strip() == str(root / "sub")


def test_unknown_workload_and_services_are_refused(project: Make) -> None:
    root = project(
        "jobs:\n  train: {command: [sh, -c, 'true']}\nservices:\n  web: {command: [sh, -c, 'sleep 1']}\n"
    )
    with pytest.raises(UsageError, match="did you mean 'train'"):
        run_local(root, "trian")
    with pytest.raises(UsageError, match="mizzen up web"):
        run_local(root, "web")


def test_a_step_can_run_its_job_with_other_args(project: Make) -> None:
    root = project(
        """
        volumes: {out: {files: {claim: out}}}
        jobs:
          echo:
            command: [sh, -c, 'echo "$0" >> "$1"/said']
            args: [job-default, "${volumes.out}"]
        pipelines:
          p:
            steps:
              - echo
              - {job: echo, name: again, after: [echo], args: [step-args, "${volumes.out}"]}
        """
    )
    res = run_local(root, "p")
    assert res.code == 0, res.err
    said = (root / ".mizzen" / "files" / "out" / "said").read_text().split()
    assert said == ["job-default", "step-args"]
    assert [s.name for s in res.record.steps] == ["echo", "again"]


def test_missing_command_fails_the_step_with_a_plain_reason(project: Make) -> None:
    root = project("jobs:\n  j: {command: [no-such-program-xyz]}\n")
    res = run_local(root, "j")
    assert res.code == 1
    assert res.record.reason == "j command not found: no-such-program-xyz"


def test_pipeline_timeout_stops_running_steps_and_skips_the_rest(project: Make) -> None:
    root = project(
        """
        jobs:
          slow: {command: [sleep, "60"]}
          next: {command: [sh, -c, 'true']}
        pipelines:
          p: {steps: [slow, {job: next, after: [slow]}], timeout: 1s}
        """
    )
    res = run_local(root, "p", grace=0.5)
    assert res.code == 1
    assert res.step("slow").status == "failed"
    assert res.step("slow").reason == "the pipeline timed out after 1s"
    assert res.step("next").status == "skipped"
