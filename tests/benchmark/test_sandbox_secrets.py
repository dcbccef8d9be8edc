"""Hostile completions after the scoring process's secrets, run as CI runs them (as root here):
a 0600 file in a 0700 directory, the caller's home, /etc/shadow, /proc/self/status, the caller's
environment and a ``~/.netrc`` of a temporary HOME. With the namespaces each attempt gets a
permission or not-found error inside the program, the capability sets read back empty, and no
secret is in any file ``benchmark score`` writes. The same attacks in the unprivileged fallback
(``SandboxLimits(namespaces=False, drop_root_to="")``: no namespaces, the caller's own uid without
capabilities) do reach the caller's files, and the results say so; the redaction still keeps
the environment and ``.netrc`` secrets out of every file written. Also: a caller without root
(nobody, via ``setpriv``) gets the same view through a user namespace, and a program that makes
a nested user namespace of its own gains nothing from it."""

from __future__ import annotations

import functools
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.benchmark import score as score_cli
from harness.benchmark.redact import Redactor
from harness.benchmark.sandbox import ExecResult, SandboxLimits, run_program

FALLBACK = SandboxLimits(namespaces=False, drop_root_to="")
"""No namespaces, no change of user: what a caller without root and without user namespaces
gets (here uid 0 without capabilities stands for that caller)."""
NO_CAPABILITIES = "no capabilities: all five sets empty"
ATTACKS = {
    "planted_file": "open(VAULT_FILE).read()",
    "caller_home": "os.listdir(CALLER_HOME)",
    "netrc": "open(os.path.join(CALLER_HOME, '.netrc')).read()",
    "root_home": "os.listdir('/root')",
    "shadow": "open('/etc/shadow').read()",
    "capabilities": "[line for line in open('/proc/self/status') if line.startswith('Cap')]",
    "environment": "os.environ['WANDB_API_KEY']",
    "parent_environment": "open(f'/proc/{os.getppid()}/environ', 'rb').read()",
}
"""Each puts what it got into the last line of its output (what a report keeps)."""
REFUSED = ("PermissionError", "FileNotFoundError", "KeyError")


class Caller:
    """Secrets of the scoring process, as the tests plant them."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.env_secret = "wandb-" + secrets.token_hex(20)
        self.netrc_secret = "netrc-" + secrets.token_hex(20)
        self.file_secret = "vault-" + secrets.token_hex(20)
        self.home = tmp_path / "home"
        self.home.mkdir(mode=0o700)
        netrc = self.home / ".netrc"
        netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {self.netrc_secret}\n")
        netrc.chmod(0o600)
        vault = tmp_path / "vault"
        vault.mkdir(mode=0o700)
        self.vault_file = vault / "secret.txt"
        self.vault_file.write_text(self.file_secret)
        self.vault_file.chmod(0o600)
        monkeypatch.setenv("WANDB_API_KEY", self.env_secret)
        monkeypatch.setenv("HOME", str(self.home))

    def program(self, attack: str) -> str:
        return (
            f"import os\nVAULT_FILE = {str(self.vault_file)!r}\nCALLER_HOME = {str(self.home)!r}\n"
            f"raise SystemExit('got: ' + repr({ATTACKS[attack]}))\n"
        )

    def leaked(self, text: str) -> list[str]:
        found = [("env", self.env_secret), ("netrc", self.netrc_secret), ("file", self.file_secret)]
        return [name for name, value in found if value in text]


@pytest.fixture
def caller(tmp_path, monkeypatch) -> Caller:
    return Caller(tmp_path, monkeypatch)


def _namespaces_or_skip() -> None:
    probe = run_program("pass")
    if not any("mount namespace" in layer for layer in probe.isolation):
        pytest.skip(f"this machine gives the sandbox no mount namespace: {probe.isolation}")


def _everything(result: ExecResult) -> str:
    return "\n".join([result.output, result.detail, *result.isolation])


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_with_namespaces_every_attack_is_refused_inside_the_program(caller, attack):
    _namespaces_or_skip()
    result = run_program(caller.program(attack))
    assert result.status == "failed", result
    assert result.detail.startswith(REFUSED), result.detail
    assert caller.leaked(_everything(result)) == []
    assert NO_CAPABILITIES in "\n".join(result.isolation), result.isolation


def test_with_namespaces_the_results_say_what_was_read_back(caller):
    _namespaces_or_skip()
    layers = run_program("pass").isolation
    text = "\n".join(layers)
    assert "read back from /proc/self/status" in text and "no_new_privs set" in text
    assert "mounts read back from /proc/self/mountinfo" in text
    hidden = next(layer for layer in layers if layer.startswith("not visible: "))
    for place in ("/home", "/proc", "/sys", str(caller.home)):
        assert f"; {place};" in f"; {hidden.removeprefix('not visible: ')};", hidden
    if os.geteuid() == 0:
        assert "runs as nobody" in text


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_fallback_reaches_the_callers_files_and_says_so(caller, attack):
    result = run_program(caller.program(attack), FALLBACK)
    layers = "\n".join(result.isolation)
    assert "NOT isolated: files (no mount namespace" in layers, layers
    assert "NOT isolated: network" in layers
    assert NO_CAPABILITIES in layers or "no capabilities: effective, permitted" in layers
    assert "env" not in caller.leaked(_everything(result))  # the environment stays scrubbed
    assert "netrc" not in caller.leaked(_everything(result))  # read, but redacted
    if attack == "capabilities":  # what the program itself reads: every set empty
        assert result.detail.count("0000000000000000") == 5, result.detail
    if attack == "planted_file" and os.geteuid() == 0:  # the caller's own file: readable
        assert caller.leaked(result.detail) == ["file"]
    if attack == "netrc":
        assert "[redacted: ~/.netrc password for api.wandb.ai]" in result.detail
        assert result.redacted == ("~/.netrc password for api.wandb.ai",)


def test_the_fallback_as_nobody_refuses_an_interpreter_nobody_cannot_read():
    if os.geteuid() != 0:
        pytest.skip("needs root: the fallback drops root to nobody")
    result = run_program("pass", SandboxLimits(namespaces=False))
    if result.status != "error":
        assert "runs as nobody" in "\n".join(result.isolation)
        pytest.skip("this interpreter is readable by nobody: nothing to refuse")
    assert "is not readable by nobody, and no mount namespace could make it readable" in (
        result.detail
    )


@pytest.mark.parametrize("limits", [SandboxLimits(), FALLBACK], ids=["namespaces", "fallback"])
def test_secrets_printed_by_a_program_are_redacted(caller, limits):
    source = f"print('key', {caller.env_secret!r}, 'password', {caller.netrc_secret!r})\n1 / 0"
    result = run_program(source, limits)
    assert caller.leaked(_everything(result)) == []
    assert "[redacted: WANDB_API_KEY]" in result.output
    assert "[redacted: ~/.netrc password for api.wandb.ai]" in result.output
    assert result.redacted == ("WANDB_API_KEY", "~/.netrc password for api.wandb.ai")


def test_a_secret_cut_by_the_kept_tail_is_not_kept_in_part(caller):
    # the tail window starts inside the secret: its end must not survive
    source = f"print({caller.env_secret!r} + 'x' * 50)"
    result = run_program(source, SandboxLimits(output_chars=60))
    assert caller.env_secret[-12:] not in result.output, result.output


def test_redactor_picks_secret_looking_variables_and_netrc_passwords(tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text(
        'machine a.example login me password "quoted-pw-1"\ndefault password pw-222222'
    )
    environ = {
        "HOME": str(tmp_path),
        "WANDB_API_KEY": "k" * 40,
        "HF_TOKEN": "hf_abcdefgh",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "GITHUB_TOKEN": "gh-token-value",
        "WANDB_PROJECT": "not-a-secret-project",
        "PATH": "/usr/bin:/bin",
        "SHORT_TOKEN": "abc",
    }
    redactor = Redactor.from_environment(environ)
    assert sorted(redactor.secrets.values()) == [
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "HF_TOKEN",
        "WANDB_API_KEY",
        "~/.netrc password for a.example",
        "~/.netrc password for default",
    ]
    text, found = redactor.redact("x hf_abcdefgh y quoted-pw-1 not-a-secret-project")
    assert text == (
        "x [redacted: HF_TOKEN] y [redacted: ~/.netrc password for a.example] not-a-secret-project"
    )
    assert found == ("HF_TOKEN", "~/.netrc password for a.example")
    assert Redactor.from_environment({"HOME": str(tmp_path / "none")}).secrets == {}


PROBLEM = {
    "task_id": "Hostile/0",
    "prompt": "def f():\n",
    "canonical_solution": "    return 1\n",
    "test": "def check(candidate):\n    assert candidate() == 1\n",
    "entry_point": "f",
}


@pytest.mark.parametrize("mode", ["namespaces", "fallback"])
def test_benchmark_score_writes_no_secret(caller, tmp_path, monkeypatch, mode):
    if mode == "namespaces":
        _namespaces_or_skip()
    else:
        monkeypatch.setattr(score_cli, "SandboxLimits", functools.partial(SandboxLimits, **{
            "namespaces": False, "drop_root_to": ""}))  # fmt: skip
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({**PROBLEM, "task_id": "Hostile/0"}) + "\n")
    completions = ["    return 1\n" + caller.program(attack) for attack in sorted(ATTACKS)]
    completions.append(f"    return 1\nraise SystemExit({caller.env_secret!r})\n")
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "Hostile/0", "completion": c}) + "\n"
                               for c in completions))  # fmt: skip
    out = tmp_path / "out" / "report.md"
    args = ["--samples", str(samples), "--data", str(problems), "--workers", "2"]
    assert score_cli.main([*args, "--output", str(out)]) == 0
    written = {p.name: p.read_text() for p in out.parent.iterdir()}
    assert sorted(written) == ["report.json", "report.md"]
    results = json.loads(written["report.json"])
    assert results["statuses"]["passed"] == 0 and results["redacted_samples"] >= 1
    assert "Redacted" in written["report.md"] and "`WANDB_API_KEY`" in written["report.md"]
    for name, text in written.items():
        leaked = caller.leaked(text)
        if mode == "namespaces":
            assert leaked == [], (name, leaked)
            assert all(r["detail"].startswith(REFUSED) for r in results["results"][:-1])
        else:  # the weaker guarantee: the caller's own file leaks, and the report says why
            assert leaked == (["file"] if os.geteuid() == 0 else []), (name, leaked)
            assert "NOT isolated: files (no mount namespace" in text


RUN_AS_CALLER = """
import json
from harness.benchmark.sandbox import run_program
programs = {"root_home": "import os\\nos.listdir('/root')", "shadow": "open('/etc/shadow')",
            "status": "open('/proc/self/status')", "etc": "import os\\nos.listdir('/etc')"}
results = {name: run_program(source) for name, source in programs.items()}
print(json.dumps({name: [r.status, r.detail, list(r.isolation)] for name, r in results.items()}))
"""


def _as_nobody(repo: Path, hold: str) -> list[str]:
    """A command that runs RUN_AS_CALLER as nobody; where the interpreter lies under a
    directory nobody cannot cross (pyenv under /root, as here), it first makes that directory
    crossable in a private mount namespace of the test's own (a tmpfs over /root holding a bind
    of the interpreter's tree, via the empty directory ``hold``), so that nobody can start
    Python at all."""
    prefix = Path(os.path.realpath(sys.base_prefix))
    run = (f"cd {shlex.quote(str(repo))} && exec setpriv --reuid=65534 --regid=65534 "
           f"--clear-groups env HOME=/nonexistent TMPDIR=/tmp PYTHONPATH=. {sys.executable} -c "
           f"{shlex.quote(RUN_AS_CALLER)}")  # fmt: skip
    if not prefix.is_relative_to("/root"):
        return ["sh", "-c", run]
    top = Path("/root", prefix.relative_to("/root").parts[0])
    script = (f"mount --bind {top} {hold} && mount -t tmpfs -o mode=0755 tmpfs /root && "
              f"mkdir -p {top} && mount --bind {hold} {top} && {run}")  # fmt: skip
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def test_a_caller_without_root_gets_the_same_view_through_a_user_namespace():
    """The child as an unprivileged caller (nobody): the namespaces come from a user namespace
    that maps only that uid, and the program sees no more than under root."""
    if os.geteuid() != 0 or not (shutil.which("setpriv") and shutil.which("unshare")):
        pytest.skip(
            "needs root and util-linux's setpriv + unshare to become an unprivileged caller"
        )
    repo = Path(__file__).resolve().parents[2]
    hold = tempfile.mkdtemp(prefix="interpreter-")
    try:
        done = subprocess.run(_as_nobody(repo, hold), capture_output=True, text=True, timeout=300)
    finally:
        os.rmdir(hold)
    if done.returncode != 0 or "Operation not permitted" in done.stderr:
        pytest.skip(f"cannot run as nobody here: {done.stderr.strip()[-300:]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (status, detail, isolation) in results.items():
        layers = "\n".join(isolation)
        if "mount namespace" not in layers:
            pytest.skip(f"no user namespaces for an unprivileged caller here: {layers}")
        assert status == "failed" and detail.startswith(REFUSED), (name, detail)
        assert "runs as nobody" in layers and NO_CAPABILITIES in layers, layers


NESTED = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
    raise SystemExit("no nested user namespace: " + os.strerror(ctypes.get_errno()))
tries = {
    "remount / read-write": lambda: libc.mount(None, b"/", None, ctypes.c_ulong(0x1020), None),
    "remount /usr/lib read-write": lambda: libc.mount(None, b"/usr/lib", None, ctypes.c_ulong(0x1020), None),
    "unmount a bind": lambda: libc.umount2(b"/usr/lib", 2),
    "mount proc": lambda: libc.mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(0), None),
}
done = [name for name, attempt in tries.items() if attempt() == 0]
assert not done, done
os.listdir("/root")
"""


def test_os_layer_a_nested_user_namespace_gains_nothing():
    """Without the guard, ctypes creates a user namespace of its own (full capabilities in it):
    the inherited mounts stay locked read-only, /proc cannot be mounted, /root is not listed."""
    _namespaces_or_skip()
    result = run_program(NESTED, SandboxLimits(guard=False))
    if "no nested user namespace" in result.detail:
        pytest.skip(result.detail)
    assert result.status == "failed" and result.detail.startswith("PermissionError"), result
