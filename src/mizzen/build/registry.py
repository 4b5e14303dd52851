"""Registry look-ups over the HTTP API v2: does a tag exist, what is its digest, its config.

Plain HTTP (and unverified TLS) only when the caller says the registry is insecure. Credentials
come from the builder's own login: the Docker config (`docker login`, credential helpers) and the
containers auth file (`podman login`, `buildah login`), used for the registry's token handshake.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mizzen.errors import MizzenError

DOCKER_HUB = "registry-1.docker.io"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[0], MANIFEST_TYPES[2]


class RegistryError(MizzenError):
    """The registry could not be reached or refused a request."""

    exit_code = 1


@dataclass(frozen=True)
class Reference:
    host: str
    name: str

    def __str__(self) -> str:
        return f"{self.host}/{self.name}"


def parse_repository(repository: str) -> Reference:
    """Split `host[:port]/path` (Docker Hub when the first part is not a host)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return Reference(first, rest)
    name = repository if rest else f"library/{repository}"
    return Reference(DOCKER_HUB, name)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Registry:
    host: str
    insecure: bool = False
    timeout: float = 30.0
    _token: dict[str, str] = field(default_factory=dict)
    _scheme: str | None = None

    # --- public look-ups ---------------------------------------------------------------

    def tag_digest(self, name: str, tag: str) -> str | None:
        """The manifest digest the registry serves for `tag`, or None when the tag is absent."""
        resp = self._request("HEAD", f"/v2/{name}/manifests/{tag}", accept=MANIFEST_TYPES)
        if resp.status == 404:
            return None
        self._check(resp, f"{self.host}/{name}:{tag}")
        digest = resp.headers.get("docker-content-digest")
        if digest:
            return digest
        body, _ = self.manifest(name, tag)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def has_tag(self, name: str, tag: str) -> bool:
        return self.tag_digest(name, tag) is not None

    def manifest(self, name: str, ref: str) -> tuple[bytes, str]:
        resp = self._request("GET", f"/v2/{name}/manifests/{ref}", accept=MANIFEST_TYPES)
        self._check(resp, f"{self.host}/{name}:{ref}")
        return resp.body, resp.headers.get("content-type", "")

    def blob(self, name: str, digest: str) -> bytes:
        resp = self._request("GET", f"/v2/{name}/blobs/{digest}")
        self._check(resp, f"{self.host}/{name}@{digest}")
        return resp.body

    def image_config(self, name: str, ref: str, platform: str | None = None) -> dict[str, Any]:
        """The image config (labels, user, workdir...) of `ref`, following an index to one platform."""
        body, media = self.manifest(name, ref)
        doc = json.loads(body)
        if media in INDEX_TYPES or "manifests" in doc:
            chosen = _pick_platform(doc.get("manifests", []), platform)
            body, _ = self.manifest(name, chosen)
            doc = json.loads(body)
        config: dict[str, Any] = json.loads(self.blob(name, doc["config"]["digest"]))
        return config

    def put_manifest(self, name: str, tag: str, body: bytes, media_type: str) -> None:
        resp = self._request(
            "PUT", f"/v2/{name}/manifests/{tag}", data=body, content_type=media_type
        )
        self._check(resp, f"{self.host}/{name}:{tag}")

    def add_tag(self, name: str, existing: str, tag: str) -> None:
        """Point `tag` at the manifest `existing` points at (no layers move)."""
        body, media = self.manifest(name, existing)
        self.put_manifest(name, tag, body, media)

    # --- transport ---------------------------------------------------------------------

    def _check(self, resp: Response, what: str) -> None:
        if resp.status in (401, 403):
            raise RegistryError(
                f"registry {self.host} refused access to {what} (HTTP {resp.status})",
                hint=f"log in with your builder, e.g. `docker login {self.host}` or `podman login {self.host}`",
            )
        if resp.status >= 400:
            detail = resp.body[:300].decode(errors="replace").strip()
            raise RegistryError(f"registry {self.host}: {what}: HTTP {resp.status} {detail}")

    def _request(
        self,
        method: str,
        path: str,
        *,
        accept: tuple[str, ...] = (),
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Response:
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        scope = _scope_for(path, method)
        if scope in self._token:
            headers["Authorization"] = self._token[scope]
        resp = self._send(method, path, headers, data)
        if resp.status == 401 and "Authorization" not in headers:
            auth = self._authorize(resp.headers.get("www-authenticate", ""), scope)
            if auth:
                self._token[scope] = auth
                resp = self._send(method, path, {**headers, "Authorization": auth}, data)
        return resp

    def _send(
        self, method: str, path: str, headers: dict[str, str], data: bytes | None
    ) -> Response:
        schemes = (
            [self._scheme] if self._scheme else (["https", "http"] if self.insecure else ["https"])
        )
        last: Exception | None = None
        for scheme in schemes:
            try:
                resp = self._open(f"{scheme}://{self.host}{path}", method, headers, data)
            except (urllib.error.URLError, OSError) as exc:
                last = exc
                continue
            self._scheme = scheme
            return resp
        hint = "check the address and that it is up"
        if not self.insecure:
            hint += "; a plain-HTTP local registry needs `image.insecure: true` or --insecure"
        raise RegistryError(f"cannot reach registry {self.host}: {_reason(last)}", hint=hint)

    def _open(self, url: str, method: str, headers: dict[str, str], data: bytes | None) -> Response:
        req = urllib.request.Request(url, method=method, headers=headers, data=data)
        context = ssl._create_unverified_context() if self.insecure else None
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoAuthRedirect()
        )
        try:
            with opener.open(req, timeout=self.timeout) as raw:
                return Response(
                    raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.read()
                )
        except urllib.error.HTTPError as err:
            return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())

    def _authorize(self, challenge: str, scope: str) -> str | None:
        kind, _, params = challenge.partition(" ")
        creds = credentials(self.host)
        if kind.lower() == "basic":
            return f"Basic {creds}" if creds else None
        if kind.lower() != "bearer":
            return None
        fields = _parse_challenge(params)
        realm = fields.pop("realm", "")
        if not realm:
            return None
        fields.setdefault("scope", scope)
        url = realm + "?" + urllib.parse.urlencode(fields)
        headers = {"Authorization": f"Basic {creds}"} if creds else {}
        resp = self._open(url, "GET", headers, None)
        if resp.status != 200:
            return None
        doc = json.loads(resp.body)
        token = doc.get("token") or doc.get("access_token")
        return f"Bearer {token}" if token else None


class _NoAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Blob downloads redirect to storage URLs that must not receive the registry token."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
        return new


def _scope_for(path: str, method: str) -> str:
    name = path[len("/v2/") :].rsplit("/", 2)[0]
    return f"repository:{name}:" + ("pull,push" if method in ("PUT", "POST", "PATCH") else "pull")


def _parse_challenge(params: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _split_params(params):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip().strip('"')
    return out


def _split_params(params: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for ch in params:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur] if p.strip()]


def _pick_platform(manifests: list[dict[str, Any]], platform: str | None) -> str:
    wanted = platform.split("/") if platform else None
    for m in manifests:
        p = m.get("platform", {})
        if p.get("os") == "unknown":
            continue
        if (
            wanted is None
            or [p.get("os"), p.get("architecture"), *([p["variant"]] if p.get("variant") else [])][
                : len(wanted)
            ]
            == wanted
        ):
            return str(m["digest"])
    raise RegistryError(f"the image index has no manifest for platform {platform or 'any'}")


def _reason(exc: Exception | None) -> str:
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)


# --- credentials from the builders' own login -------------------------------------------------


def _auth_files() -> list[Path]:
    files = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path.home() / ".config" / "containers" / "auth.json")
    files.append(Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json")
    return files


def credentials(host: str) -> str | None:
    """base64(user:password) for `host` from the login files, or None (anonymous)."""
    keys = {host, f"https://{host}", f"http://{host}"}
    if host == DOCKER_HUB:
        keys |= {"docker.io", "index.docker.io", "https://index.docker.io/v1/"}
    for file in _auth_files():
        try:
            doc = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        for key, entry in doc.get("auths", {}).items():
            if (key.rstrip("/") in keys or key in keys) and entry.get("auth"):
                return str(entry["auth"])
        helper = next(
            (doc.get("credHelpers", {})[k] for k in keys if k in doc.get("credHelpers", {})), None
        )
        helper = helper or doc.get("credsStore")
        if helper:
            found = _from_helper(helper, host)
            if found:
                return found
    return None


def _from_helper(helper: str, host: str) -> str | None:
    try:
        out = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=host.encode(),
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    doc = json.loads(out.stdout)
    return base64.b64encode(f"{doc['Username']}:{doc['Secret']}".encode()).decode()
