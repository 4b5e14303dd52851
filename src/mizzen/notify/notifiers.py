"""Notifiers: a webhook (JSON, Slack or Teams body) and email over SMTP.

Secrets in a webhook URL (`${secrets.NAME.KEY}`) are resolved only here, at send time, and
never logged: log lines name the URL as written in the spec, and any resolved secret value
that slips into an error message is masked.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mizzen.errors import MizzenError
from mizzen.notify.conditions import Event

log = logging.getLogger("mizzen.notify")

SecretLookup = Callable[[str, str], str | None]

ATTEMPTS = 3
BACKOFF_SECONDS = 0.5  # doubled after each failed attempt: 0.5 s, 1 s
TIMEOUT_SECONDS = 10.0

_COLOURS = {"failed": "D93F0B", "late": "FBCA04", "slow": "FBCA04", "metric": "1D76DB"}


class Permanent(MizzenError):
    """A notification that retrying cannot fix (bad URL, missing secret, refused login)."""


class Notifier(ABC):
    name: str

    @abstractmethod
    def describe(self) -> str:
        """Where it sends to, safe to log (no secret values)."""

    @abstractmethod
    def send(self, message: dict[str, Any]) -> None:
        """Deliver once; raise on failure (`Permanent` when retrying cannot help)."""

    def secrets(self) -> list[str]:
        """Resolved secret values to mask in log lines."""
        return []


def message_of(
    event: Event, *, project: str, env: str | None, target: str, url: str | None = None
) -> dict[str, Any]:
    """The neutral JSON payload of one event (the `json` webhook format)."""
    return {
        "source": "mizzen",
        "project": project,
        "env": env,
        "target": target,
        "alert": event.condition,
        "workload": event.workload,
        "run": event.run_id,
        "status": event.status,
        "summary": event.summary,
        "details": event.details,
        "url": url,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def slack_body(msg: dict[str, Any]) -> dict[str, Any]:
    title = f"[{msg['project']}] {msg['alert']}: {msg['workload']}"
    text = msg["summary"] + (f" <{msg['url']}|open>" if msg.get("url") else "")
    return {
        "text": f"{title}: {msg['summary']}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"env {msg['env'] or '-'} · target {msg['target']} · run {msg['run'] or '-'}",
                    }
                ],
            },
        ],
    }


def teams_body(msg: dict[str, Any]) -> dict[str, Any]:
    """An Adaptive Card message, as Teams workflow webhooks expect."""
    facts = [
        {"title": k, "value": str(msg[k])}
        for k in ("project", "env", "target", "workload", "run", "status")
        if msg.get(k)
    ]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "text": f"{msg['alert']}: {msg['workload']}",
            "color": "Attention" if msg["alert"] == "failed" else "Warning",
        },
        {"type": "TextBlock", "text": msg["summary"], "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if msg.get("url"):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open run", "url": msg["url"]}]
    return {
        "type": "message",
        "summary": msg["summary"],
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


FORMATS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "json": lambda m: m,
    "slack": slack_body,
    "teams": teams_body,
}


def resolve_secrets(text: str, secret: SecretLookup) -> tuple[str, list[str]]:
    """Fill `${secrets.NAME.KEY}` in `text`; returns the text and the values used."""
    from mizzen.spec.interpolate import substitute, unescape

    used: list[str] = []
    missing: list[str] = []

    def resolve(ref: Any) -> str | None:
        if ref.root != "secrets":
            return None
        value = secret(ref.parts[0], ref.parts[1])
        if value is None:
            missing.append(ref.dotted)
            return None
        used.append(value)
        return value

    out = unescape(substitute(text, resolve))
    if missing:
        raise Permanent(
            f"secret {', '.join(missing)} is not set",
            hint="set MIZZEN_SECRET_<NAME>_<KEY> or the local .env file",
        )
    return out, used


class Webhook(Notifier):
    name = "webhook"

    def __init__(self, url_template: str, fmt: str, secret: SecretLookup) -> None:
        self.template = url_template
        self.format = fmt
        self._secret = secret
        self._used: list[str] = []

    def describe(self) -> str:
        return f"webhook {self.template} ({self.format})"

    def secrets(self) -> list[str]:
        return self._used

    def send(self, message: dict[str, Any]) -> None:
        import urllib.error
        import urllib.request

        url, self._used = resolve_secrets(self.template, self._secret)
        if not url.startswith(("http://", "https://")):
            raise Permanent("the webhook URL must start with http:// or https://")
        body = json.dumps(FORMATS[self.format](message)).encode()
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "mizzen-alerts"},
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise Permanent(f"the receiver refused the notification: HTTP {exc.code}") from None
            raise RuntimeError(f"HTTP {exc.code}") from None


class Email(Notifier):
    name = "email"

    def __init__(self, spec: dict[str, Any], secret: SecretLookup) -> None:
        self.spec = spec
        self._secret = secret
        self._used: list[str] = []

    def describe(self) -> str:
        return f"email to {', '.join(self.spec['to'])} via {self.spec['smtp']}"

    def secrets(self) -> list[str]:
        return self._used

    def _credentials(self) -> tuple[str, str] | None:
        name = self.spec.get("secret")
        if not name:
            return None
        user, password = self._secret(name, "user"), self._secret(name, "password")
        if user is None or password is None:
            raise Permanent(
                f"secret {name} needs the keys `user` and `password` for the email alert"
            )
        self._used = [password]
        return user, password

    def send(self, message: dict[str, Any]) -> None:
        import smtplib
        import ssl
        from email.message import EmailMessage

        host, _, port = str(self.spec["smtp"]).rpartition(":")
        if not host or not port.isdigit():
            raise Permanent(
                f"email smtp {self.spec['smtp']!r}: expected host:port, e.g. smtp.example.com:587"
            )
        creds = self._credentials()
        mail = EmailMessage()
        mail["Subject"] = f"[{message['project']}] {message['alert']}: {message['workload']}"
        mail["From"] = self.spec.get("from") or "mizzen@localhost"
        mail["To"] = ", ".join(self.spec["to"])
        lines = [message["summary"], ""]
        lines += [
            f"{k}: {message[k]}"
            for k in ("project", "env", "target", "workload", "run", "status", "url")
            if message.get(k)
        ]
        mail.set_content("\n".join(lines) + "\n")
        try:
            with smtplib.SMTP(host, int(port), timeout=TIMEOUT_SECONDS) as smtp:
                smtp.ehlo()
                if self.spec.get("starttls", True):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if creds:
                    smtp.login(*creds)
                smtp.send_message(mail)
        except (
            smtplib.SMTPNotSupportedError,
            smtplib.SMTPAuthenticationError,
            ssl.SSLCertVerificationError,
        ) as exc:
            raise Permanent(f"{type(exc).__name__}: {exc}") from None


def deliver(
    notifier: Notifier,
    message: dict[str, Any],
    *,
    attempts: int | None = None,
    backoff: float | None = None,
) -> bool:
    """Send with bounded retries and backoff; log each failure; never raise."""
    attempts = attempts or ATTEMPTS
    delay = BACKOFF_SECONDS if backoff is None else backoff
    for attempt in range(1, attempts + 1):
        try:
            notifier.send(message)
        except Exception as exc:
            text = _mask(str(exc) or type(exc).__name__, notifier.secrets())
            final = isinstance(exc, Permanent) or attempt == attempts
            log.warning(
                "alert %s for %s: %s failed (attempt %d/%d): %s%s",
                message["alert"],
                message["workload"],
                notifier.describe(),
                attempt,
                attempts,
                text,
                "" if final else f"; retrying in {delay:g}s",
            )
            if final:
                return False
            time.sleep(delay)
            delay *= 2
            continue
        log.info(
            "alert %s for %s sent: %s", message["alert"], message["workload"], notifier.describe()
        )
        return True
    return False


def _mask(text: str, values: list[str]) -> str:
    for value in values:
        if value:
            text = text.replace(value, "***")
    return text
