"""Cross-section checks of a validated project: every name used is declared, `${...}`
references are well placed, pipelines form a DAG, alerts match something."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mizzen.errors import Problem
from mizzen.spec.interpolate import Ref, RefError, refs
from mizzen.spec.models import Project
from mizzen.spec.problems import suggest
from mizzen.spec.source import PathKey, Source


@dataclass
class Declared:
    """The names a spec declares. From the validated project, or from the raw data when some
    sections failed validation (so a reference to an invalid volume is not also "unknown")."""

    stores: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    secrets: dict[str, list[str] | None] = field(default_factory=dict)  # None: keys unknown
    config: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)

    @classmethod
    def from_project(cls, project: Project) -> Declared:
        return cls(
            stores=list(project.stores),
            volumes=list(project.volumes),
            secrets={n: list(s.keys) for n, s in project.secrets.items()},
            config=list(project.config),
            jobs=list(project.jobs),
            pipelines=list(project.pipelines),
            datasets=list(project.datasets),
        )

    @classmethod
    def of(cls, data: dict[str, Any]) -> Declared:
        def names(section: str) -> list[str]:
            value = data.get(section)
            return [str(k) for k in value] if isinstance(value, dict) else []

        secrets: dict[str, list[str] | None] = {}
        raw = data.get("secrets")
        for name, value in raw.items() if isinstance(raw, dict) else []:
            keys = value.get("keys") if isinstance(value, dict) else value
            secrets[str(name)] = [str(k) for k in keys] if isinstance(keys, list) else None
        return cls(
            names("stores"),
            names("volumes"),
            secrets,
            names("config"),
            names("jobs"),
            names("pipelines"),
            names("datasets"),
        )


def check_references(
    project: Project, source: Source, declared: Declared | None = None
) -> list[Problem]:
    """Cross-section checks: every name used is declared, `${...}` references are well placed,
    pipelines form a DAG, alerts match something."""
    names = declared or Declared.from_project(project)
    root = Path(source.file).parent
    problems: list[Problem] = []

    def add(path: PathKey, message: str, hint: str = "") -> None:
        problems.append(source.problem(path, message, hint))

    def known(kind: str, name: str, options: typing.Iterable[str], path: PathKey) -> bool:
        options = list(options)
        if name in options:
            return True
        hint = suggest(name, options) or (
            f"declare it under `{kind}s:`" if not options else f"known: {', '.join(options)}"
        )
        add(path, f"unknown {kind} {name!r}", hint)
        return False

    if project.store is not None:
        known("store", project.store, names.stores, ("store",))
    for vname, vol in project.volumes.items():
        if vol.blob is not None:
            known("store", vol.blob.split("/", 1)[0], names.stores, ("volumes", vname, "blob"))
        if vol.blob is not None and vol.read_only and vol.sync == "mirror":
            add(
                ("volumes", vname, "sync"),
                "a read-only volume is never written back; `sync` does nothing here",
                "remove `sync` or `readOnly`",
            )
    from mizzen import contract

    for vname in project.volumes:
        if contract.volume_var(vname) in contract.OWN_SETTINGS:
            add(
                ("volumes", vname),
                f"{vname!r}: its variable {contract.volume_var(vname)} is one of mizzen's own "
                "settings, so a workload could not find the volume",
                "rename the volume",
            )
    for dname, dataset in project.datasets.items():
        known("store", dataset.location.store, names.stores, ("datasets", dname, "location"))
    if "maintenance" in project.model_fields_set and not project.datasets:
        add(
            ("maintenance",),
            "has no effect: the datasets' maintenance job runs only when the project declares "
            "datasets",
            "remove `maintenance:`, or declare `datasets:`",
        )
    for sname, store_spec in project.stores.items():
        if store_spec.secret is not None:
            known("secret", store_spec.secret, names.secrets, ("stores", sname, "secret"))
    for key, value in project.config.items():
        _check_config_refs(("config", key), value, add)

    workloads: list[tuple[str, str, Any]] = [
        *(("jobs", n, j) for n, j in project.jobs.items()),
        *(("services", n, s) for n, s in project.services.items()),
    ]
    sections_of: dict[str, str] = {}
    for section, name, _ in [
        *workloads,
        *(("pipelines", n, p) for n, p in project.pipelines.items()),
    ]:
        if name.startswith("mizzen-"):
            add(
                (section, name),
                f"{name!r}: names starting with `mizzen-` are mizzen's own workloads",
                "rename it",
            )
        if name in sections_of:
            add(
                (section, name),
                f"{name!r} is also a {sections_of[name][:-1]}; workload names must be unique across jobs, pipelines and services",
            )
        sections_of[name] = section

    for section, name, w in workloads:
        base: PathKey = (section, name)
        for i, secret in enumerate(w.secrets):
            known("secret", secret, names.secrets, (*base, "secrets", i))
        for i, vol in enumerate(w.volumes or []):
            known("volume", vol, names.volumes, (*base, "volumes", i))
        strings: list[tuple[PathKey, str, bool]] = []
        strings += [((*base, "command", i), s, False) for i, s in enumerate(w.command or [])]
        strings += [((*base, "args", i), s, False) for i, s in enumerate(w.args)]
        strings += [((*base, "env", k), s, True) for k, s in w.env.items()]
        if w.working_dir is not None:
            strings.append(((*base, "workingDir"), w.working_dir, False))
        if section == "jobs":
            _dataset_refs(names, base, w, known, add)
            from mizzen.kinds import job_kinds

            for k in job_kinds():
                if k.selects(w):
                    strings += [((*base, *path), text, ok) for path, text, ok in k.texts(w)]
                    for where, message, hint in k.problems(w, root, names.volumes, names.config):
                        add((*base, *where), message, hint)
        for path, text, secret_ok in strings:
            _check_refs(names, path, text, secret_ok, add)
    for pname, pipe in project.pipelines.items():
        _pipeline_problems(names, pname, pipe, add, known)
    for i, alert in enumerate(project.alerts):
        if alert.webhook:
            _check_refs(names, ("alerts", i, "webhook"), alert.webhook, True, add)
        if alert.email and alert.email.secret:
            known("secret", alert.email.secret, names.secrets, ("alerts", i, "email", "secret"))
        _alert_jobs(names, i, alert.jobs, add)
    for sname, signal in project.signals.items():
        _signal_problems(project, names, root, sname, signal, known, add)
    return problems


def _signal_problems(
    project: Project, names: Declared, root: Path, sname: str, signal: Any, known: Any, add: Any
) -> None:
    """A signal's dataset is declared, and the columns it names are in that dataset's schema
    (the time column a date or timestamp, fine enough for the grain); its SQL file exists;
    its alerts' secrets are declared."""
    from mizzen.signals.sqlcheck import unknown_columns

    base: PathKey = ("signals", sname)
    for i, alert in enumerate(signal.alerts):
        if alert.webhook:
            _check_refs(names, (*base, "alerts", i, "webhook"), alert.webhook, True, add)
        if alert.email and alert.email.secret:
            path = (*base, "alerts", i, "email", "secret")
            known("secret", alert.email.secret, names.secrets, path)
    if signal.sql is not None and not (root / signal.sql).is_file():
        add(
            (*base, "sql"),
            f"{signal.sql} is not a file in the project",
            "sql is relative to the folder of mizzen.yaml",
        )
    if not known("dataset", signal.dataset, names.datasets, (*base, "dataset")):
        return
    dataset = project.datasets.get(signal.dataset)
    if dataset is None:  # declared, but invalid: its own problems are reported
        return
    columns = dataset.columns
    for path, column in signal.columns():
        where: PathKey = (*base, *path)
        if column not in columns:
            add(
                where,
                f"{column!r} is not a column of dataset {signal.dataset!r}",
                suggest(column, list(columns)) or f"its columns: {', '.join(columns)}",
            )
        elif path == ("time",):
            kind = columns[column].type
            if kind not in ("date", "timestamp", "timestamp_ntz"):
                add(where, f"{column!r} is {kind}; the time column is a date or a timestamp")
            elif kind == "date" and signal.grain == "hour":
                add(
                    where,
                    f"{column!r} is a date: it has no hours for grain: hour",
                    "use grain: day or week, or a timestamp column",
                )
        elif columns[column].type == "binary" or columns[column].type.startswith("array<"):
            add(where, f"{column!r} is {columns[column].type}, which cannot slice a signal")
    for path, text in signal.expressions():
        for _, name in unknown_columns(text, list(columns)):
            add(
                (*base, *path),
                f"{name!r} is not a column of dataset {signal.dataset!r}",
                suggest(name, list(columns)) or f"its columns: {', '.join(columns)}",
            )


def _dataset_refs(names: Declared, base: PathKey, job: Any, known: Any, add: Any) -> None:
    """A job's `inputs` name declared datasets (a version may be pinned: `name@12`, or
    `name@<ISO time>`); its `outputs` name declared datasets, unpinned."""
    from mizzen.datasets.model import parse_ref

    for section in ("inputs", "outputs"):
        for i, ref in enumerate(getattr(job, section)):
            path: PathKey = (*base, section, i)
            try:
                parsed = parse_ref(ref)
            except ValueError as exc:
                add(path, str(exc))
                continue
            if not known("dataset", parsed.name, names.datasets, path):
                continue
            if section == "outputs" and (parsed.version is not None or parsed.as_of is not None):
                add(
                    path,
                    f"{ref!r}: a job writes the next version of a dataset, not a pinned one",
                    f"write `{parsed.name}`",
                )


_GLOB = frozenset("*?[")


def _alert_jobs(names: Declared, index: int, patterns: list[str], add: Any) -> None:
    import fnmatch

    targets = [*names.jobs, *names.pipelines]
    for j, pattern in enumerate(patterns):
        path: PathKey = ("alerts", index, "jobs", j)
        if not _GLOB & set(pattern):
            if pattern not in targets:
                add(
                    path,
                    f"unknown job or pipeline {pattern!r}",
                    suggest(pattern, targets)
                    or (f"known: {', '.join(targets)}" if targets else "declare it under `jobs:`"),
                )
        elif pattern != "*" and not any(fnmatch.fnmatchcase(t, pattern) for t in targets):
            add(
                path,
                f"{pattern!r} matches no job or pipeline",
                f"known: {', '.join(targets)}" if targets else "",
            )


def _refs_in(path: PathKey, text: str, add: Any) -> list[Ref]:
    """The references in `text`; a malformed one is reported (and none returned)."""
    try:
        return list(refs(text))
    except RefError as exc:
        add(path, str(exc))
        return []


def _check_config_refs(path: PathKey, text: str, add: Any) -> None:
    for ref in _refs_in(path, text, add):
        if ref.root != "env":
            hint = (
                "config values are plain (not secret) settings; use `secrets:` and ${secrets.NAME.KEY} in a workload's env"
                if ref.root == "secrets"
                else "use the reference in the workload's args or env instead"
            )
            add(path, f"{ref.text}: config values may only use ${{env.NAME}}", hint)


def _check_refs(names: Declared, path: PathKey, text: str, secret_ok: bool, add: Any) -> None:
    for ref in _refs_in(path, text, add):
        head = ref.parts[0]
        if ref.root == "volumes" and head not in names.volumes:
            add(
                path,
                f"{ref.text}: unknown volume {head!r}",
                suggest(head, names.volumes) or "declare it under `volumes:`",
            )
        elif ref.root == "config" and head not in names.config:
            add(
                path,
                f"{ref.text}: unknown config key {head!r}",
                suggest(head, names.config) or "declare it under `config:`",
            )
        elif ref.root == "secrets":
            if not secret_ok:
                add(
                    path,
                    f"{ref.text}: secrets may only be used in `env` values (never in command lines, where they would leak)",
                    "set an env var: env: {TOKEN: " + ref.text + "}",
                )
            elif text.strip() != ref.text:
                add(
                    path,
                    f"{ref.text}: a secret reference must be the whole value (it becomes a secretKeyRef)",
                    "read the secret in code with mizzen.secret(), or put it alone in its own env var",
                )
            elif head not in names.secrets:
                add(
                    path,
                    f"{ref.text}: unknown secret {head!r}",
                    suggest(head, names.secrets) or "declare it under `secrets:`",
                )
            else:
                keys = names.secrets[head]
                if keys is not None and ref.parts[1] not in keys:
                    add(
                        path,
                        f"{ref.text}: secret {head!r} has no key {ref.parts[1]!r}",
                        suggest(ref.parts[1], keys) or f"keys: {', '.join(keys)}",
                    )


def _pipeline_problems(names: Declared, pname: str, pipe: Any, add: Any, known: Any) -> None:
    base: PathKey = ("pipelines", pname, "steps")
    step_names: dict[str, int] = {}
    for i, step in enumerate(pipe.steps):
        known("job", step.job, names.jobs, (*base, i, "job"))
        for j, arg in enumerate(step.args or []):
            _check_refs(names, (*base, i, "args", j), arg, False, add)
        if step.step_name in step_names:
            add(
                (*base, i),
                f"duplicate step {step.step_name!r}: step {step_names[step.step_name] + 1} has the same name",
                "give one of them a distinct `name:`",
            )
        step_names[step.step_name] = i
    for i, step in enumerate(pipe.steps):
        for j, dep in enumerate(step.after):
            if dep == step.step_name:
                add((*base, i, "after", j), f"step {dep!r} cannot run after itself")
            elif dep not in step_names:
                add(
                    (*base, i, "after", j),
                    f"unknown step {dep!r}",
                    suggest(dep, step_names) or f"steps: {', '.join(step_names)}",
                )
    cycle = find_cycle(
        {
            s.step_name: [d for d in s.after if d in step_names and d != s.step_name]
            for s in pipe.steps
        }
    )
    if cycle:
        first = step_names[cycle[0]]
        add(
            (*base, first),
            "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
            "remove one of the `after:` links",
        )


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in `node -> [dependencies]`, as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
