"""The README's "Try it by hand" steps, run as written: the simulator and `serve` as real
processes on real sockets, each command in a shell, and the event arriving at the simulator."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.harness import free_port

from shoprelay.config import SECRET_NAMES, Settings

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Try it by hand"
PRODUCTION_HEADING = "### Check your production setup"
# The ports the README's commands use, by default or in .env.
README_KLAVIYO_PORT = 8100
README_SERVE_PORT = 8000
README_ADMIN_PORT = 8001  # serve's admin listener, by default
PRODUCTION_URL = "https://relay.example.com"
SCRIPT_SECONDS = 60
ARRIVAL_SECONDS = 15


def section_blocks(markdown: str, heading: str) -> list[str]:
    """The ```sh blocks from `heading` up to the next heading of its level or above."""
    level = len(heading.split(" ", 1)[0])
    all_lines = markdown.splitlines()
    lines = iter(all_lines[all_lines.index(heading) + 1 :])
    blocks: list[str] = []
    for line in lines:
        if re.match(rf"#{{1,{level}}} ", line):
            break
        if line.startswith("```sh"):
            blocks.append("".join(f"{code}\n" for code in iter(lines.__next__, "```")))
    return blocks


def shell_commands(block: str) -> list[str]:
    """The block's commands without their comments; a here-document stays with its line."""
    lines = iter(block.splitlines())
    commands: list[str] = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if opened := re.search(r"<<-?'?(\w+)'?", line):
            body = [line]
            for following in lines:
                body.append(following)
                if following.strip() == opened.group(1):
                    break
            commands.append("\n".join(body))
        else:
            commands.append(re.sub(r"\s+#(\s.*)?$", "", line))
    return commands


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_shell_commands_keep_here_documents_and_drop_comments() -> None:
    """The parser the README test stands on: what bash would run, line by line."""
    block = "a &   # starts a\ncat > f <<'EOF'\nX=1 # kept\nEOF\n\n# a note\nb 'c d' x#y  # run b\n"
    assert shell_commands(block) == ["a &", "cat > f <<'EOF'\nX=1 # kept\nEOF", "b 'c d' x#y"]


def test_section_blocks_stop_at_the_next_heading_of_the_level() -> None:
    """Sub-headings stay in the section, a comment line in a block is no heading."""
    markdown = "## A\n```sh\n# note\none\n```\n### B\n```sh\ntwo\n```\n## C\n```sh\nx\n```\n"
    assert section_blocks(markdown, "## A") == ["# note\none\n", "two\n"]


@pytest.fixture
def session_group() -> Iterator[list[int]]:
    """Process groups the test starts; each is stopped, and waited for, at the end."""
    groups: list[int] = []
    yield groups
    for group in groups:
        _stop_group(group)


def _stop_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def test_the_readme_steps_work_as_written(tmp_path: Path, session_group: list[int]) -> None:
    """Simulator, .env, serve, send-webhook, status, dlq, then the production check against
    the local serve: every command succeeds and the order reaches the simulator."""
    blocks = section_blocks(README.read_text(encoding="utf-8"), SECTION)
    assert len(blocks) == 2, "expected the steps and the production check"
    klaviyo_port = README_KLAVIYO_PORT if port_is_free(README_KLAVIYO_PORT) else free_port()
    serve_port = README_SERVE_PORT if port_is_free(README_SERVE_PORT) else free_port()
    admin_port = README_ADMIN_PORT if port_is_free(README_ADMIN_PORT) else free_port()
    serve_url = f"http://127.0.0.1:{serve_port}"

    def local(command: str) -> str:
        """The command on the ports this run uses; the README's own when they are free."""
        command = command.replace(f":{README_KLAVIYO_PORT}", f":{klaviyo_port}")
        command = command.replace(PRODUCTION_URL, serve_url)
        if klaviyo_port != README_KLAVIYO_PORT:
            command = command.replace("sim klaviyo", f"sim klaviyo --port {klaviyo_port}")
        if admin_port != README_ADMIN_PORT:
            command = command.replace(
                "shoprelay serve", f"shoprelay serve --admin-port {admin_port}"
            )
        if serve_port != README_SERVE_PORT:
            command = command.replace("shoprelay serve", f"shoprelay serve --port {serve_port}")
            if "send-webhook" in command and "--url" not in command:
                command += f" --url {serve_url}"
        return command

    script = ["wait_for() { " + _WAIT_FOR + " }"]
    for command in (local(c) for block in blocks for c in shell_commands(block)):
        script.append(command)
        if command.endswith("&"):
            # A person reads the banner or the log before typing on; the script waits for it.
            port = klaviyo_port if "sim klaviyo" in command else serve_port
            script.append(f"wait_for {port}")
    output = tmp_path / "output.txt"
    with output.open("w") as sink:
        shell = subprocess.Popen(
            ["bash", "-e", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=_clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        session_group.append(shell.pid)
        returncode = shell.wait(timeout=SCRIPT_SECONDS)
    said = output.read_text()
    assert returncode == 0, said
    assert f"KLAVIYO_API_URL=http://127.0.0.1:{klaviyo_port}" in said  # the simulator's banner
    assert "200 processed: orders/create" in said
    assert "The dead-letter queue is empty." in said
    assert "200 ignored: shop/update" in said  # the production check, against this serve
    assert _placed_order_arrives(f"http://127.0.0.1:{klaviyo_port}"), said


_WAIT_FOR = (
    "for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; "
    'sleep 0.05; done; echo "nothing listens on port $1" >&2; return 1;'
)


def _clean_environment() -> dict[str, str]:
    """This environment without shoprelay's settings, so the README's .env decides them."""
    names = set(Settings.model_fields) | {f"{name}_FILE" for name in SECRET_NAMES}
    environ = {key: value for key, value in os.environ.items() if key not in names}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    return environ


def _placed_order_arrives(klaviyo_url: str) -> bool:
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while time.monotonic() < deadline:
        events = httpx.get(f"{klaviyo_url}/_sim/events", params={"metric": "Placed Order"})
        if events.json()["count"] == 1:
            return True
        time.sleep(0.1)
    return False
