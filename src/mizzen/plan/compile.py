"""Spec -> Plan: resolve references, volumes, env, resources for one target."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mizzen.plan import model as p
from mizzen.plan.model import secret_env_name
from mizzen.spec.interpolate import Ref, finish, refs, substitute, unescape
from mizzen.spec.loader import Spec
from mizzen.spec.models import JobSpec, ProcessFields, Project, ServiceSpec, StoreSpec, VolumeSpec
from mizzen.spec.units import parse_duration, parse_quantity

K8S_VOLUME_ROOT = "/mnt/mizzen"
DEFAULT_MODEL_PORT = 8080
LOCAL_STATE = ".mizzen"


def compile_plan(
    spec: Spec,
    target: p.TargetName = "local",
    *,
    image: str | None = None,
    sets: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
) -> p.Plan:
    """Turn a validated spec into a Plan for `target`.

    `image` is the project image reference to use (a pinned digest when known).
    `sets` are `--set key=value` overrides of config values. `environ` feeds `${env.X}`.
    """
    import os

    project = spec.project
    root = spec.root
    environ = dict(os.environ if environ is None else environ)
    config = {
        k: unescape(
            substitute(v, lambda r: environ.get(r.parts[0], "") if r.root == "env" else None)
        )
        for k, v in project.config.items()
    }
    for key, value in (sets or {}).items():
        if key not in config:
            import difflib

            from mizzen.errors import UsageError

            close = difflib.get_close_matches(key, list(config), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            hint += f"--set overrides a key declared under `config:` ({', '.join(config) or 'there are none'})"
            raise UsageError(
                f"--set {key}=...: {key!r} is not a config key of this project", hint=hint
            )
        config[key] = value
    stores = {name: _store(name, s, target, spec.env, root) for name, s in project.stores.items()}
    ctx = _Context(project, target, root, stores, config, environ)

    jobs = {name: _job(ctx, name, job) for name, job in project.jobs.items()}
    pipelines = {
        name: _pipeline(ctx, name, pipe, project.jobs, jobs)
        for name, pipe in project.pipelines.items()
    }
    services = {name: _service(ctx, name, svc) for name, svc in project.services.items()}
    return p.Plan(
        project=project.name,
        target=target,
        env=spec.env,
        root=str(root),
        spec_file=str(spec.file.resolve()),
        spec_digest=spec.digest,
        image=image or (project.image.repository if project.image else None),
        dockerfile=project.image.dockerfile if project.image else None,
        store=_project_store(project, stores, target, root),
        stores=stores,
        config=config,
        secrets={
            n: p.SecretDecl(n, tuple(s.keys), s.existing_secret) for n, s in project.secrets.items()
        },
        jobs=jobs,
        pipelines=pipelines,
        services=services,
        alerts=tuple(_alert(a) for a in project.alerts),
        kubernetes=_kubernetes(project),
    )


class _Context:
    def __init__(
        self,
        project: Project,
        target: p.TargetName,
        root: Path,
        stores: dict[str, p.StoreRef],
        config: dict[str, str],
        environ: dict[str, str],
    ) -> None:
        self.project = project
        self.target = target
        self.root = root
        self.stores = stores
        self.config = config
        self.environ = environ

    def mount(self, name: str) -> p.Mount:
        vol = self.project.volumes[name]
        return _mount(name, vol, self)

    def resolve(self, text: str, mounts: dict[str, p.Mount]) -> str:
        def value(ref: Ref) -> str | None:
            if ref.root == "volumes":
                return mounts[ref.parts[0]].path
            if ref.root == "config":
                return self.config[ref.parts[0]]
            if ref.root == "env":
                return self.environ.get(ref.parts[0], "")
            return None  # run.* at run time; secrets never inline

        return substitute(text, value)


def _store(
    name: str, spec: StoreSpec, target: p.TargetName, env: str | None, root: Path
) -> p.StoreRef:
    url = spec.url
    if "://" not in url:
        url = (root / url).resolve().as_uri() if target == "local" else url
    elif target == "local" and env is None and not url.startswith("file://"):
        # No environment chosen: a laptop sandbox, so day-one runs need no cloud access.
        url = (root / LOCAL_STATE / "stores" / name).as_uri()
    return p.StoreRef(name=name, url=url, options=dict(spec.options), secret=spec.secret)


def _project_store(
    project: Project, stores: dict[str, p.StoreRef], target: p.TargetName, root: Path
) -> p.StoreRef | None:
    if project.store is not None:
        base = stores[project.store]
        return p.StoreRef(
            name=base.name,
            url=base.url.rstrip("/") + f"/mizzen/{project.name}",
            options=base.options,
            secret=base.secret,
        )
    if target == "local":
        return p.StoreRef(name="local", url=(root / LOCAL_STATE / "store").as_uri())
    return None


def _mount(name: str, vol: VolumeSpec, ctx: _Context) -> p.Mount:
    local = ctx.target == "local"
    container_path = vol.mount_path or f"{K8S_VOLUME_ROOT}/{name}"
    if vol.blob is not None:
        store_name, _, path = vol.blob.partition("/")
        source = p.BlobSource(
            store=ctx.stores[store_name],
            path=path.strip("/"),
            cache_seconds=parse_duration(vol.cache) if vol.cache is not None else None,
            include=tuple(vol.include),
            exclude=tuple(vol.exclude),
            sync=vol.sync,
        )
        where = (
            str(ctx.root / LOCAL_STATE / "cache" / "volumes" / name) if local else container_path
        )
        return p.Mount(volume=name, kind="blob", path=where, read_only=vol.read_only, blob=source)
    if vol.scratch is not None:
        where = (
            str(ctx.root / LOCAL_STATE / "scratch" / "${run.id}" / name)
            if local
            else container_path
        )
        return p.Mount(
            volume=name,
            kind="scratch",
            path=where,
            read_only=False,
            size=vol.scratch.size,
            host_path=vol.scratch.path,
            medium=vol.scratch.medium,
        )
    assert vol.files is not None
    if local:
        base = ctx.root / LOCAL_STATE / "files" / vol.files.claim
        where = str(base / vol.files.sub_path) if vol.files.sub_path else str(base)
    else:
        where = container_path
    return p.Mount(
        volume=name,
        kind="files",
        path=where,
        read_only=vol.read_only,
        claim=vol.files.claim,
        sub_path=vol.files.sub_path,
        size=vol.files.size,
        storage_class=vol.files.storage_class,
        access_mode=vol.files.access_mode,
    )


def _referenced_volumes(texts: Iterable[str]) -> list[str]:
    out: list[str] = []
    for text in texts:
        for ref in refs(text):
            if ref.root == "volumes" and ref.parts[0] not in out:
                out.append(ref.parts[0])
    return out


def _process(
    ctx: _Context, name: str, w: ProcessFields, argv: list[str], extra_texts: Iterable[str] = ()
) -> p.Process:
    texts = [*argv, *w.env.values(), *extra_texts, *([w.working_dir] if w.working_dir else [])]
    names = list(w.volumes) if w.volumes is not None else []
    names += [v for v in _referenced_volumes(texts) if v not in names]
    mounts = {v: ctx.mount(v) for v in names}
    command = tuple(finish(ctx.resolve(a, mounts)) for a in argv)

    env: list[p.EnvVar] = [
        p.EnvVar("MIZZEN_PROJECT", ctx.project.name),
        p.EnvVar("MIZZEN_WORKLOAD", name),
    ]
    if ctx.config:
        env.append(p.EnvVar("MIZZEN_CONFIG_KEYS", ",".join(sorted(ctx.config))))
    env += [p.EnvVar(m.env_name, m.path) for m in mounts.values()]
    env += [p.EnvVar(k, v) for k, v in ctx.config.items()]
    for secret in w.secrets:
        for key in ctx.project.secrets[secret].keys:
            env.append(p.EnvVar(secret_env_name(secret, key), secret=p.SecretRef(secret, key)))
    for key, value in w.env.items():
        found = list(refs(value))
        if found and found[0].root == "secrets":
            env.append(p.EnvVar(key, secret=p.SecretRef(found[0].parts[0], found[0].parts[1])))
        else:
            env.append(p.EnvVar(key, finish(ctx.resolve(value, mounts))))
    res = w.resources
    return p.Process(
        image=w.image,
        command=command,
        env=tuple(_last_wins(env)),
        mounts=tuple(mounts.values()),
        resources=p.Resources(
            cpu=res.cpu,
            memory=res.memory,
            gpu=res.gpu,
            cpu_limit=res.limits.get("cpu", res.cpu),
            memory_limit=res.limits.get("memory", res.memory),
        ),
        working_dir=finish(ctx.resolve(w.working_dir, mounts)) if w.working_dir else None,
        placement=p.Placement(
            node_selector=dict(w.node_selector),
            tolerations=tuple(w.tolerations),
            affinity=w.affinity,
            service_account_name=w.service_account_name,
            annotations=dict(w.annotations),
            labels=dict(w.labels),
            security_context=w.security_context,
        ),
    )


def _last_wins(env: list[p.EnvVar]) -> list[p.EnvVar]:
    seen: dict[str, p.EnvVar] = {}
    for var in env:
        seen.pop(var.name, None)
        seen[var.name] = var
    return list(seen.values())


def _schedule(s: Any) -> p.Schedule | None:
    if s is None:
        return None
    return p.Schedule(
        cron=s.cron, time_zone=s.time_zone, catch_up=s.catch_up, concurrency=s.concurrency
    )


def _job(ctx: _Context, name: str, job: JobSpec) -> p.Job:
    spark = notebook = distributed = None
    extra: list[str] = []
    if job.spark is not None:
        s = job.spark
        spark = p.SparkPlan(
            main_file=s.main_file,
            main_class=s.main_class,
            executors=s.executors.instances,
            executor_cores=s.executors.cores,
            executor_memory=s.executors.memory,
            driver_cores=s.driver.cores,
            driver_memory=s.driver.memory,
            conf=dict(s.conf),
            spark_version=s.spark_version,
            packages=tuple(s.packages),
            image=s.image,
        )
        argv = [*job.args]
        extra.append(s.main_file)
    elif job.notebook is not None:
        notebook = p.NotebookPlan(path=job.notebook, parameters=dict(job.parameters))
        argv = [*job.args]  # replaced below, once volume references are resolved
        extra += [v for v in job.parameters.values() if isinstance(v, str)]
    else:
        argv = [*(job.command or []), *job.args]
    if job.distributed is not None:
        distributed = p.DistributedPlan(
            job.distributed.framework, job.distributed.workers, job.distributed.master_port
        )
    process = _process(ctx, name, job, argv, extra)
    if notebook is not None:
        mounts = {m.volume: m for m in process.mounts}
        params = {
            k: finish(ctx.resolve(v, mounts)) if isinstance(v, str) else v
            for k, v in notebook.parameters.items()
        }
        notebook = p.NotebookPlan(path=notebook.path, parameters=params)
        process = replace(process, command=tuple(notebook_argv(notebook)) + process.command)
    return p.Job(
        name=name,
        process=process,
        retries=job.retries,
        retry_delay_seconds=parse_duration(job.retry_delay),
        timeout_seconds=parse_duration(job.timeout) if job.timeout else None,
        schedule=_schedule(job.schedule),
        spark=spark,
        distributed=distributed,
        notebook=notebook,
        ttl_seconds=parse_duration(job.ttl_after_finished),
    )


def _pipeline(
    ctx: _Context, name: str, pipe: Any, specs: dict[str, JobSpec], jobs: dict[str, p.Job]
) -> p.Pipeline:
    steps = tuple(_step(ctx, s, specs[s.job], jobs[s.job]) for s in pipe.steps)
    return p.Pipeline(
        name=name,
        steps=steps,
        schedule=_schedule(pipe.schedule),
        parallelism=pipe.parallelism,
        timeout_seconds=parse_duration(pipe.timeout) if pipe.timeout else None,
    )


def _step(ctx: _Context, step: Any, spec: JobSpec, job: p.Job) -> p.Step:
    """A step that replaces its job's args gets its own Process (argv and mounts)."""
    if step.args is None:
        return p.Step(name=step.step_name, job=step.job, after=tuple(step.after))
    if spec.command is None:
        argv = [*job.process.command[: len(job.process.command) - len(spec.args)], *step.args]
    else:
        argv = [*spec.command, *step.args]
    process = _process(ctx, job.name, spec, argv)
    if job.notebook is not None or job.spark is not None:
        process = replace(
            process,
            mounts=_union_mounts(job.process.mounts, process.mounts),
            env=_union_env(job.process.env, process.env),
        )
    args = tuple(process.command[len(process.command) - len(step.args) :])
    return p.Step(
        name=step.step_name, job=step.job, after=tuple(step.after), args=args, process=process
    )


def _union_mounts(first: tuple[p.Mount, ...], second: tuple[p.Mount, ...]) -> tuple[p.Mount, ...]:
    names = {m.volume for m in first}
    return first + tuple(m for m in second if m.volume not in names)


def _union_env(first: tuple[p.EnvVar, ...], second: tuple[p.EnvVar, ...]) -> tuple[p.EnvVar, ...]:
    return tuple(_last_wins([*first, *second]))


def _service(ctx: _Context, name: str, svc: ServiceSpec) -> p.Service:
    model = None
    port = svc.port
    if svc.model is not None:
        port = port or DEFAULT_MODEL_PORT
        shares = svc.versions or {svc.version or "latest": 100}
        model = p.ModelServing(
            model=svc.model,
            versions=dict(shares),
            max_batch_size=svc.batching.max_batch_size if svc.batching else None,
            max_latency_seconds=parse_duration(svc.batching.max_latency) if svc.batching else None,
        )
        argv = model_server_argv(
            model,
            port,
            # a laptop's server stays private; in a pod it listens for the Service
            host="127.0.0.1" if ctx.target == "local" else "0.0.0.0",
            workers=_server_workers(ctx, svc),
        )
    else:
        argv = [*(svc.command or []), *svc.args]
    health = None
    if svc.health is not None:
        health = p.Probe(
            path=svc.health.path,
            port=svc.health.port or port or 8080,
            initial_delay_seconds=parse_duration(svc.health.initial_delay),
            startup_timeout_seconds=parse_duration(svc.health.startup_timeout),
        )
    elif model is not None:
        health = p.Probe(
            path="/v2/health/ready", port=port or DEFAULT_MODEL_PORT, initial_delay_seconds=2
        )
    auto = svc.autoscale
    return p.Service(
        name=name,
        process=_process(ctx, name, svc, argv),
        model=model,
        port=port,
        replicas=svc.replicas,
        autoscale=p.Autoscale(auto.min, auto.max, auto.target_cpu) if auto else None,
        health=health,
        restart_delay_seconds=parse_duration(svc.restart_delay),
    )


def model_server_argv(
    model: p.ModelServing, port: int, *, host: str = "0.0.0.0", workers: int | None = None
) -> list[str]:
    """The model server command line, the same locally and in a container."""
    argv = [
        "mizzen",
        "serve",
        model.model,
        "--versions",
        json.dumps(model.versions, separators=(",", ":")),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if model.max_batch_size is not None:
        argv += ["--max-batch-size", str(model.max_batch_size)]
    if model.max_latency_seconds is not None:
        argv += ["--max-latency", f"{model.max_latency_seconds}s"]
    return argv


def _server_workers(ctx: _Context, svc: ServiceSpec) -> int | None:
    """One server process per CPU the service may use (its limit, else its request; in a
    cluster the default resources apply); None: as many as the machine has."""
    res = svc.resources
    cpu = res.limits.get("cpu") or res.cpu
    if cpu is None and ctx.target == "kubernetes":
        defaults = ctx.project.kubernetes.default_resources
        cpu = defaults.limits.get("cpu") or defaults.cpu
    if cpu is None:
        return None
    return max(1, math.ceil(parse_quantity(cpu)))


def notebook_argv(notebook: p.NotebookPlan) -> list[str]:
    """Notebook jobs run papermill on both targets; the executed copy is a run output."""
    stem = notebook.path.rsplit("/", 1)[-1].removesuffix(".ipynb")
    argv = [
        "python",
        "-m",
        "papermill",
        notebook.path,
        "${run.outputs}/" + stem + ".ipynb",
        "--log-output",
    ]
    if notebook.parameters:
        argv += ["-y", json.dumps(notebook.parameters, sort_keys=True)]
    return argv


def _alert(a: Any) -> p.Alert:
    return p.Alert(
        on=tuple(a.on),
        jobs=tuple(a.jobs),
        slower_than_seconds=parse_duration(a.slower_than) if a.slower_than else None,
        late_after_seconds=parse_duration(a.late_after) if a.late_after else None,
        metric=a.metric.model_dump() if a.metric else None,
        webhook=a.webhook,
        format=a.format,
        email=a.email.model_dump(by_alias=True) if a.email else None,
    )


def _kubernetes(project: Project) -> p.KubernetesSettings:
    k = project.kubernetes
    d = k.default_resources
    return p.KubernetesSettings(
        context=k.context,
        namespace=k.namespace,
        service_account_name=k.service_account_name,
        image_pull_secrets=tuple(k.image_pull_secrets),
        default_resources=p.Resources(
            cpu=d.cpu,
            memory=d.memory,
            gpu=d.gpu,
            cpu_limit=d.limits.get("cpu", d.cpu),
            memory_limit=d.limits.get("memory", d.memory),
        ),
        run_as_user=k.run_as_user,
        run_as_non_root=k.run_as_non_root,
        create_namespace=k.create_namespace,
    )
