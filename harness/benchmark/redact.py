"""Redaction of the caller's secrets from what a sandboxed program printed, before it is kept.

Defence in depth behind the sandbox (which scrubs the environment and, where the OS permits,
hides every home directory): if a program still prints a secret value of the process that scores
it (a ``WANDB_API_KEY`` found somewhere, a ``~/.netrc`` password), the kept output says
``[redacted: WANDB_API_KEY]`` instead, and the result records what was redacted. Exact values
only: a secret printed cut, reversed or encoded is not caught.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECRET_NAME = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|SECRET_KEY|ACCESS_KEY|PASSWORD|PASSWD|CREDENTIALS?)(_|$)"
    r"|^WANDB_.*KEY|^HF_TOKEN$|^HUGGING_?FACE_HUB_TOKEN$"
)
"""Environment variable names whose values are secrets (``*_API_KEY``, ``*_TOKEN``, ``WANDB_*``
keys, ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``*_PASSWORD``, ...)."""
MIN_LENGTH = 6
"""Shorter values are not redacted: they cannot be secrets worth the name, and replacing every
``1`` or ``true`` in the output would garble it."""


def secret_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``{value: variable name}`` for the secret-looking variables of ``environ``."""
    return {
        value: name
        for name, value in sorted(environ.items())
        if SECRET_NAME.search(name.upper()) and len(value) >= MIN_LENGTH
    }


def _netrc_tokens(text: str) -> list[str]:
    tokens = []
    for token in text.split():
        if len(token) >= 2 and token[0] == token[-1] == '"':
            token = token[1:-1]
        tokens.append(token)
    return tokens


def netrc_passwords(path: Path) -> dict[str, str]:
    """``{password: "~/.netrc password for MACHINE"}`` from a netrc file (absent or unreadable:
    none). Tokens are read as netrc's grammar has them: ``machine M login L password P``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    tokens, found, machine = _netrc_tokens(text), {}, "default"
    for key, value in itertools.pairwise(tokens):
        if key == "machine":
            machine = value
        elif key == "default":
            machine = "default"
        elif key == "password" and len(value) >= MIN_LENGTH:
            found[value] = f"~/.netrc password for {machine}"
    return found


@dataclass(frozen=True)
class Redactor:
    """Secret values to remove from program output, with what each one is."""

    secrets: Mapping[str, str]
    """value -> what it is (a variable name, or which ``.netrc`` password)."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """The caller's secrets: its secret-looking environment variables and the passwords of
        its netrc file (``$NETRC``, else ``$HOME/.netrc``)."""
        environ = os.environ if environ is None else environ
        home = environ.get("HOME") or os.path.expanduser("~")
        netrc = Path(environ.get("NETRC") or Path(home) / ".netrc")
        return cls({**netrc_passwords(netrc), **secret_env(environ)})

    @property
    def longest(self) -> int:
        """Length of the longest secret (0 if none)."""
        return max(map(len, self.secrets), default=0)

    def redact(self, text: str) -> tuple[str, tuple[str, ...]]:
        """``text`` with every secret value replaced, and what was redacted (sorted names)."""
        found = []
        for value in sorted(self.secrets, key=len, reverse=True):  # a secret inside another
            if value in text:
                name = self.secrets[value]
                text = text.replace(value, f"[redacted: {name}]")
                found.append(name)
        return text, tuple(sorted(set(found)))
