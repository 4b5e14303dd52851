"""The run-time contract: what the targets write is what `read()` gives back, and every
writer (local run, `mizzen up`, `mizzen notebook`, the Kubernetes render) writes the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from mizzen import contract
from mizzen import spec as spec_mod
from mizzen.plan import compile_plan
from mizzen.targets.kubernetes.render import render

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: shop
image: {repository: r.example.com/shop}
stores:
  lake: {url: "s3://lake/team", options: {endpoint_url: "http://s3.local"}, secret: creds}
store: lake
secrets:
  creds: [access_key_id, secret_access_key]
environments:
  prod-like: {}
volumes:
  raw: {blob: lake/raw}
config: {ROWS: "10"}
jobs:
  train: {command: [python, train.py, "${volumes.raw}"]}
"""


def test_what_is_written_is_read_back() -> None:
    environ = {
        **contract.identity("shop", "train"),
        **contract.config_vars({"ROWS": "10", "SEED": "7"}),
        **contract.run_vars("r1", "2026-12-01", "/tmp/run", "local", env="prod", git_sha="abc"),
        **contract.store_vars("s3://lake/team", {"endpoint_url": "http://s3"}, "creds"),
        **contract.step_vars("nightly", "train"),
        contract.volume_var("raw-data"): "/mnt/raw",
        contract.secret_var("db", "pass.word"): "hunter2",
        contract.SETS: '{"ROWS": "5"}',
    }
    given = contract.read(environ)
    assert (given.project, given.workload, given.target, given.env) == (
        "shop",
        "train",
        "local",
        "prod",
    )
    assert (given.run_id, given.run_date, given.run_dir, given.git_sha) == (
        "r1",
        "2026-12-01",
        "/tmp/run",
        "abc",
    )
    assert given.store == contract.Store("s3://lake/team", {"endpoint_url": "http://s3"}, "creds")
    assert given.volume("raw-data") == "/mnt/raw" and given.volume("nope") is None
    assert given.config("ROWS", environ) == "10" and given.config("PATH", environ) is None
    assert (given.pipeline, given.step, given.sets) == ("nightly", "train", {"ROWS": "5"})
    assert contract.secret_values(environ) == ("hunter2",)


def test_a_process_mizzen_did_not_start_has_no_contract() -> None:
    given = contract.read({"PATH": "/bin", "MIZZEN_VOLUME_WAIT": "1h"})
    assert given == contract.Contract()


def test_unreadable_values_are_a_clear_error() -> None:
    with pytest.raises(contract.ContractError, match="MIZZEN_STORE_OPTIONS is not valid JSON"):
        contract.read({contract.STORE: "s3://x", contract.STORE_OPTIONS: "{"})


def test_an_unreadable_value_is_a_usage_error_with_a_fix() -> None:
    """So every reader (the SDK publishing a model, `mizzen models`, `mizzen exec`) exits 2
    with a fix instead of wrapping it, or not, on its own."""
    from mizzen.errors import UsageError

    with pytest.raises(UsageError) as err:
        contract.read({contract.SETS: "{bad"})
    assert "MIZZEN_SETS is not valid JSON" in err.value.message and err.value.hint


def test_every_writer_gives_the_store_and_its_secret(tmp_path: Path) -> None:
    """A local run, `mizzen notebook` and a pod all get the store with its secret's name
    (the notebook kernels once lacked MIZZEN_STORE_SECRET)."""
    from mizzen.cli.notebook_cmd import session_env
    from mizzen.targets.local.env import store_vars

    (tmp_path / "mizzen.yaml").write_text(SPEC)
    local = compile_plan(spec_mod.load(tmp_path / "mizzen.yaml", "prod-like"), "local")
    wanted = {contract.STORE, contract.STORE_OPTIONS, contract.STORE_SECRET}
    assert set(store_vars(local.store)) == wanted

    class NoVolumes:
        def path(self, mount: object) -> str:
            return "/x"

    kernel = session_env(local, NoVolumes(), (), "s1")
    assert wanted <= set(kernel) and kernel[contract.STORE_SECRET] == "creds"
    assert contract.read(kernel).store == contract.read(store_vars(local.store)).store

    cluster = compile_plan(
        spec_mod.load(tmp_path / "mizzen.yaml"),
        "kubernetes",
        image="r.example.com/shop:1",
        environ={},
    )
    job = next(o for o in render(cluster) if o["kind"] == "Job")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert wanted <= set(env) and env[contract.STORE_SECRET] == "creds"
    assert env[contract.volume_var("raw")] == "/mnt/mizzen/raw"
    assert env[contract.CONFIG_KEYS] == "ROWS"
