"""Spec -> Plan: resolve references, volumes, env, resources for one target."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mizzen import contract
from mizzen.plan import model as p
from mizzen.plan.model import secret_env_name
from mizzen.spec.interpolate import Ref, finish, refs, substitute, unescape
from mizzen.spec.loader import Spec
from mizzen.spec.models import JobSpec, ProcessFields, Project, StoreSpec, VolumeSpec
from mizzen.spec.units import parse_duration

if TYPE_CHECKING:
    from mizzen.kinds.pipeline import Pipeline as PipelineKind
    from mizzen.kinds.service import Service as ServiceKind

K8S_VOLUME_ROOT = "/mnt/mizzen"
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
    from mizzen.kinds import kind

    ctx = Compiler(project, target, root, stores, config, environ)
    jobs = {name: ctx.job(name, job) for name, job in project.jobs.items()}
    from mizzen.plan.builtin import builtin_jobs

    for name, raw in builtin_jobs(project).items():
        jobs[name] = ctx.job(name, JobSpec.model_validate(raw))
    pipeline = cast("PipelineKind", kind("pipeline"))
    pipelines = {
        name: pipeline.compile(ctx, name, pipe, jobs) for name, pipe in project.pipelines.items()
    }
    services = {
        name: cast("ServiceKind", kind("model-service" if svc.model else "service")).compile(
            ctx, name, svc
        )
        for name, svc in project.services.items()
    }
    from mizzen.plan.builtin import builtin_services
    from mizzen.spec.models import ServiceSpec

    for name, raw in builtin_services(project).items():
        own = ServiceSpec.model_validate(raw)
        services[name] = cast("ServiceKind", kind("service")).compile(ctx, name, own)
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
        datasets=ctx.datasets(),
    )


class Compiler:
    """What workload kinds compile with: the project, the target, stores, config and the
    references' resolution (mizzen.kinds call it from their `compile`)."""

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
        self._datasets: dict[str, p.DatasetDecl] | None = None

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

    def text(self, text: str, mounts: dict[str, p.Mount]) -> str:
        """A spec string with its references resolved, as the plan carries it."""
        return finish(self.resolve(text, mounts))

    def process(
        self, name: str, w: ProcessFields, argv: list[str], extra_texts: Iterable[str] = ()
    ) -> p.Process:
        return _process(self, name, w, argv, extra_texts)

    def schedule(self, s: Any) -> p.Schedule | None:
        return _schedule(s)

    @staticmethod
    def last_wins(env: list[p.EnvVar]) -> list[p.EnvVar]:
        return _last_wins(env)

    def job(self, name: str, job: JobSpec) -> p.Job:
        """A job, compiled by its kind."""
        from mizzen.kinds import kind_of_spec

        k = kind_of_spec(job)
        compiled = k.compile(self, name, job)
        texts = [*(text for _, text, _ in k.texts(job) if text), *compiled.texts]
        process = self.process(name, job, compiled.argv, texts)
        process, payload = k.finish(self, job, compiled, process)
        process = self.with_datasets(process, list(job.inputs), list(job.outputs))
        return p.Job(
            name=name,
            process=process,
            retries=job.retries,
            retry_delay_seconds=parse_duration(job.retry_delay),
            timeout_seconds=parse_duration(job.timeout) if job.timeout else None,
            schedule=_schedule(job.schedule),
            ttl_seconds=parse_duration(job.ttl_after_finished),
            kind=k.name,
            spec=payload,
            inputs=tuple(job.inputs),
            outputs=tuple(job.outputs),
        )

    def datasets(self) -> dict[str, p.DatasetDecl]:
        """The project's datasets in this environment's stores (worked out once: every job
        with inputs or outputs asks)."""
        if self._datasets is None:
            self._datasets = self._declare_datasets()
        return self._datasets

    def _declare_datasets(self) -> dict[str, p.DatasetDecl]:
        out = {}
        for name, d in self.project.datasets.items():
            if d.location.store not in self.stores:
                continue
            declared = d.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            declared["location"] = f"{d.location.store}/{d.location.path}"
            out[name] = p.DatasetDecl(
                name, self.stores[d.location.store], d.location.path, declared
            )
        return out

    def with_datasets(self, process: p.Process, inputs: list[str], outputs: list[str]) -> p.Process:
        """The datasets a job reads and writes reach it through the contract (with the
        credentials of their stores)."""
        from mizzen.datasets.model import parse_ref

        names = list(dict.fromkeys(parse_ref(r).name for r in [*inputs, *outputs]))
        if not names:
            return process
        decls = self.datasets()
        used = [decls[n] for n in names if n in decls]
        stores = {d.store.name: d.store for d in used}
        payload = datasets_vars(used, inputs, outputs, every=set(names) >= set(decls))
        env = [*process.env, *(p.EnvVar(k, v) for k, v in payload.items())]
        have = {e.name for e in env}
        for store in stores.values():
            if store.secret:
                for key in self.project.secrets[store.secret].keys:
                    var = contract.secret_var(store.secret, key)
                    if var not in have:
                        env.append(p.EnvVar(var, secret=p.SecretRef(store.secret, key)))
        return replace(process, env=tuple(env), datasets=tuple(used))


def datasets_vars(
    used: Sequence[p.DatasetDecl], inputs: list[str], outputs: list[str], *, every: bool = False
) -> dict[str, str]:
    """The contract variable giving a process these datasets (and where their stores are);
    `every`: they are all the project's."""
    stores = {d.store.name: d.store for d in used}
    return contract.datasets_var(
        {d.name: {"store": d.store.name, "path": d.path, "spec": d.spec} for d in used},
        {n: {"url": s.url, "options": s.options, "secret": s.secret} for n, s in stores.items()},
        inputs,
        outputs,
        every=every,
    )


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


def _mount(name: str, vol: VolumeSpec, ctx: Compiler) -> p.Mount:
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
    ctx: Compiler, name: str, w: ProcessFields, argv: list[str], extra_texts: Iterable[str] = ()
) -> p.Process:
    texts = [*argv, *w.env.values(), *extra_texts, *([w.working_dir] if w.working_dir else [])]
    names = list(w.volumes) if w.volumes is not None else []
    names += [v for v in _referenced_volumes(texts) if v not in names]
    mounts = {v: ctx.mount(v) for v in names}
    command = tuple(finish(ctx.resolve(a, mounts)) for a in argv)

    keys = contract.config_vars(ctx.config)
    env = [p.EnvVar(k, v) for k, v in contract.identity(ctx.project.name, name).items()]
    if contract.CONFIG_KEYS in keys:
        env.append(p.EnvVar(contract.CONFIG_KEYS, keys[contract.CONFIG_KEYS]))
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
