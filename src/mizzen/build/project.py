"""Build the project image: tags from git, skip when the registry has it, build, push, record."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mizzen.build.builders import BuildRequest, select_builder
from mizzen.build.records import BuildRecord, save_record
from mizzen.build.registry import Registry, RegistryError, parse_repository
from mizzen.build.tags import GitState, TagSet, compute_tags, read_git_state, source_url
from mizzen.errors import UsageError

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass
class BuildOptions:
    push: bool = False
    builder: str | None = None
    tags: tuple[str, ...] = ()
    platform: str | None = None
    force: bool = False
    insecure: bool = False
    build_args: dict[str, str] = field(default_factory=dict)


@dataclass
class Reporter:
    """Where the build talks: `info` for mizzen's own messages, `line` for builder output."""

    info: Callable[[str], None] = print
    line: Callable[[str], None] = lambda _line: None
    phase: Callable[[str], None] = lambda _name: None


@dataclass
class BuildOutcome:
    record: BuildRecord
    record_path: Path
    refs: list[str]


def build_project(spec: Any, opts: BuildOptions, report: Reporter | None = None) -> BuildOutcome:
    """`spec` is a loaded `mizzen.spec.Spec`."""
    report = report or Reporter()
    image = spec.project.image
    if image is None:
        raise UsageError(
            f"{spec.file}: no `image:` section, so there is nothing to build",
            hint="add `image: {repository: registry.example.com/team/" + spec.project.name + "}`",
        )
    root: Path = spec.root
    context = (root / image.context).resolve()
    dockerfile = (root / image.dockerfile).resolve()
    if not context.is_dir():
        raise UsageError(
            f"{spec.file}: image.context: folder {context} does not exist",
            hint="set image.context to a folder relative to mizzen.yaml",
        )
    if not dockerfile.is_file():
        raise UsageError(
            f"{spec.file}: image.dockerfile: {dockerfile} does not exist",
            hint="set image.dockerfile relative to mizzen.yaml, or run `mizzen init` for a starter Dockerfile",
        )

    git = read_git_state(root)
    tags = compute_tags(git, opts.tags)
    ref = parse_repository(image.repository)
    insecure = image.insecure or opts.insecure
    registry = Registry(ref.host, insecure=insecure)
    platform = opts.platform or image.platform
    base = {
        "repository": image.repository,
        "git_sha": git.sha if git else None,
        "dirty": git.dirty if git else True,
        "spec_digest": spec.digest,
        "platform": platform,
    }

    if git is not None and not git.dirty and not opts.force:
        found = _existing(registry, ref.name, tags, opts, report)
        if found is not None:
            record = BuildRecord(
                tags=tags.all, builder="", digest=found, pushed=True, skipped=True, **base
            )
            return BuildOutcome(
                record, save_record(root, record), [f"{image.repository}:{t}" for t in tags.all]
            )

    builder = select_builder(opts.builder)
    if builder.name == "docker" and insecure and ref.host.split(":")[0] not in LOCAL_HOSTS:
        report.info(
            f"note: docker reaches a plain-HTTP registry only if the engine lists {ref.host} in insecure-registries"
        )
    refs = [f"{image.repository}:{t}" for t in tags.all]
    request = BuildRequest(
        context=context,
        dockerfile=dockerfile,
        refs=refs,
        build_args={**image.build_args, **opts.build_args},
        labels=oci_labels(git, root, spec, tags),
        target=image.target,
        platform=platform,
    )
    report.phase("build")
    report.info(f"building {refs[0]} with {builder.name}")
    builder.build(request, report.line)
    digest: str | None = None
    if opts.push:
        report.phase("push")
        pushed_digest: str | None = None
        for r in refs:
            report.info(f"pushing {r}")
            pushed_digest = builder.push(r, insecure, report.line) or pushed_digest
        try:
            digest = registry.tag_digest(ref.name, tags.primary)
        except RegistryError as exc:
            report.info(
                f"warning: could not read the pushed digest back from the registry ({exc.message}); recording the builder's"
            )
            digest = pushed_digest
        if digest is None:
            raise RegistryError(
                f"pushed {refs[0]} but the registry does not list the tag {tags.primary}"
            )
    record = BuildRecord(
        tags=tags.all, builder=builder.name, digest=digest, pushed=opts.push, **base
    )
    return BuildOutcome(record, save_record(root, record), refs)


def _existing(
    registry: Registry, name: str, tags: TagSet, opts: BuildOptions, report: Reporter
) -> str | None:
    """The digest of the primary tag when the registry has it (adding missing extra tags on --push)."""
    try:
        digest = registry.tag_digest(name, tags.primary)
    except RegistryError as exc:
        if opts.push:
            raise
        report.info(f"note: could not check the registry ({exc.message}); building anyway")
        return None
    if digest is None:
        return None
    missing = [t for t in tags.extra if registry.tag_digest(name, t) != digest]
    if missing and opts.push:
        for tag in missing:
            registry.add_tag(name, tags.primary, tag)
        report.info(f"tagged {registry.host}/{name}:{tags.primary} also as {', '.join(missing)}")
    elif missing:
        report.info(f"the registry lacks the tags {', '.join(missing)}; --push adds them")
    report.info(
        f"{registry.host}/{name}:{tags.primary} is already in the registry ({digest}) and the tree is clean: not rebuilt, not pushed (--force rebuilds)"
    )
    return digest


def oci_labels(git: GitState | None, root: Path, spec: Any, tags: TagSet) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.source": source_url(git.remote if git else None, root),
        "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "org.opencontainers.image.title": spec.project.name,
        "org.opencontainers.image.version": tags.primary,
        "io.mizzen.spec-digest": spec.digest,
    }
    if git is not None:
        labels["org.opencontainers.image.revision"] = git.sha
    return labels
