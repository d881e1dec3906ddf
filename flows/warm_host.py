"""A warm host for `multitalk` commands: one resident process that has imported the render path forks a child each.

Most of a small edit's re-render went to starting Python again: importing Prefect, torch and scipy and loading the
command line cost more than voicing, laying out and stitching the one changed scene (bench/RESULTS.md).
`multitalk server start` therefore also starts this host beside the Prefect server. `multitalk render|validate|
timeline` (flows/launch.py) then send it their arguments, working directory and environment, and their terminal
itself (stdin, stdout, stderr, passed as file descriptors over a Unix socket in the state folder). The host forks:
the child runs the same command-line code, already warm, writing straight to the user's terminal, and its exit
status becomes the command's. Ctrl-C and other signals are forwarded to the child; a command that is killed takes
its child with it.

The host refuses, and the command runs in its own process as before, when it could behave differently: the
project's code changed since the host imported it, the command's Prefect settings differ from the host's, or the
server it warmed up against is gone. It forks only while it runs no threads of its own making (OpenBLAS's
workers handle fork), and loads no model or voice before forking: children load their own.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from flows.prefect_env import local_prefect_environment, state_dir

HOST_SOCKET = "warm-host.sock"
HANDSHAKE_SECONDS = 5.0
MAX_SOCKET_PATH = 107  # bytes: sun_path holds 108 with its terminating NUL
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PROJECT_PACKAGES = ("flows", "tasks", "multitalk", "studio")
# Imported once by the host so that every child starts warm: the flow, its tasks and stages, what they use, and
# what Prefect imports only when a flow runs. Not `flows.cli`: its console must see the command's terminal.
WARM_MODULES = (
    "flows.render_screenplay",
    "flows.render_scene",
    "flows.progress_display",
    "flows.console_failures",
    "multitalk.stages.render",
    "multitalk.audio.tracks",
    "multitalk.audio.piper",
    "multitalk.audio.espeak",
    "multitalk.audio.timeline_plot",
    "multitalk.renderers.registry",
    "multitalk.model.masks",
    "multitalk.store.gc",
    "scipy.signal",
    "piper.voice",
    "onnxruntime",
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.concurrency.sync",
    "prefect.utilities.visualization",
    "anyio._backends._asyncio",
    "fastapi.encoders",
    "opentelemetry._logs",
    "opentelemetry.metrics",
    "piper.phonemize_espeak",
    "PIL.PngImagePlugin",
    "PIL.JpegImagePlugin",
    "typer",
)


def socket_path() -> Path | None:
    """The host's socket in this state folder; None when its path is too long for a Unix socket."""
    path = state_dir() / HOST_SOCKET
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def fingerprint(environ: dict[str, str] | os._Environ[str]) -> str:
    """What a child inherits from the host: the interpreter, the project's code (by file stat), Prefect settings."""
    digest = hashlib.sha256(sys.executable.encode())
    root = Path(__file__).resolve().parents[1]
    for package in PROJECT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            info = path.stat()
            digest.update(f"{path}\0{info.st_mtime_ns}\0{info.st_size}\n".encode())
    settings = local_prefect_environment(environ)
    settings["PREFECT_HOME"] = str(Path(settings["PREFECT_HOME"]).absolute())
    settings["PYTHONPATH"] = environ.get("PYTHONPATH", "")
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


# --- the command's side -------------------------------------------------------------------------------------------


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def _lines(connection: socket.socket) -> Any:
    """The JSON messages arriving on `connection`, one per line, until it closes."""
    buffer = b""
    while True:
        try:
            data = connection.recv(65536)
        except InterruptedError:
            continue
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def hand_off(argv: list[str]) -> int | None:
    """Run `multitalk ARGV` in the warm host; its exit status, or None when no host takes it (run it here then)."""
    path = socket_path()
    if path is None or not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(HANDSHAKE_SECONDS)
        connection.connect(str(path))
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "fingerprint": fingerprint(os.environ)}
        socket.send_fds(connection, [b"T"], [0, 1, 2])
        _send(connection, request)
        messages = _lines(connection)
        reply = next(messages, None)
    except (OSError, ValueError):
        connection.close()
        return None
    if not reply or not reply.get("accepted"):
        connection.close()
        return None
    connection.settimeout(None)
    previous = {number: signal.getsignal(number) for number in FORWARDED_SIGNALS}

    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            _send(connection, {"signal": number})

    for number in FORWARDED_SIGNALS:
        signal.signal(number, forward)
    try:
        for message in messages:
            if "exit" in message:
                return int(message["exit"])
    except (OSError, ValueError):
        pass  # the host went away mid-command: said below
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        connection.close()
    print("multitalk: the warm host stopped before the command finished", file=sys.stderr)
    return 1


def host_answers() -> bool:
    """Whether a warm host is listening in this state folder."""
    path = socket_path()
    if path is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


# --- the host's side ----------------------------------------------------------------------------------------------


def _exit_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


class Host:
    """The listening socket, and the child each connected command is running in."""

    def __init__(self, path: Path, server_url: str | None, code_and_settings: str) -> None:
        self.path = path
        self.server_url = server_url
        self.fingerprint = code_and_settings
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # child pid -> its command's connection
        self.exits: dict[int, int] = {}  # child pid -> a pidfd that turns readable when it exits (wakes `serve`)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def serve(self) -> None:
        self.path.unlink(missing_ok=True)
        previous = os.umask(0o177)  # the socket is the user's alone: it runs commands as them
        try:
            self.listener.bind(str(self.path))
        finally:
            os.umask(previous)
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ)
        print(f"warm host: listening on {self.path} (pid {os.getpid()})", flush=True)
        try:
            while True:
                for key, _ in self.selector.select(timeout=0.1):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.data is None:  # a command's connection; else a child's exit, reaped below
                        self._from_command(key.fileobj)  # type: ignore[arg-type]
                self._reap()
        finally:
            for pid in self.children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.path.unlink(missing_ok=True)
            self.listener.close()

    def _refusal(self, request: dict[str, Any]) -> str | None:
        if request.get("fingerprint") != self.fingerprint:
            return "the project's code or the Prefect settings differ from the host's"
        if self.server_url is not None:
            from flows.server import running_server

            server = running_server()
            if server is None or server["url"] != self.server_url:
                return f"the Prefect server {self.server_url} it warmed up against is gone"
        return None

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        fds: list[int] = []
        try:
            connection.settimeout(HANDSHAKE_SECONDS)
            greeting, fds, _, _ = socket.recv_fds(connection, 1, 3)
            if not greeting:  # `host_answers` probing
                connection.close()
                return
            request = next(_lines(connection))
            refusal = self._refusal(request) if len(fds) == 3 else "stdin, stdout and stderr were not passed"
            if refusal:
                print(f"warm host: refused {request.get('argv')}: {refusal}", flush=True)
                _send(connection, {"accepted": False, "reason": refusal})
                connection.close()
                return
            pid = os.fork()
            if pid == 0:
                self.selector.close()
                for other in (self.listener, connection, *self.children.values()):
                    other.close()
                for pidfd in self.exits.values():
                    os.close(pidfd)
                _run_command(request, fds)
            _send(connection, {"accepted": True, "pid": pid})
            connection.settimeout(None)
        except (OSError, ValueError, StopIteration) as error:
            print(f"warm host: a command's hand-off failed: {error}", flush=True)
            connection.close()
            return
        finally:
            for fd in fds:
                os.close(fd)
        print(f"warm host: {' '.join(request['argv'])} -> pid {pid}", flush=True)
        self.children[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ)
        with contextlib.suppress(OSError, AttributeError):  # no pidfd (old kernel): the 0.1 s poll reaps it
            self.exits[pid] = os.pidfd_open(pid)
            self.selector.register(self.exits[pid], selectors.EVENT_READ, data=pid)

    def _from_command(self, connection: socket.socket) -> None:
        pid = next(pid for pid, known in self.children.items() if known is connection)
        try:
            data = connection.recv(4096)
        except OSError:
            data = b""
        if not data:  # the command is gone (killed): so is its render
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.selector.unregister(connection)
            return
        for line in data.splitlines():
            try:
                number = json.loads(line).get("signal")
            except (ValueError, AttributeError):
                continue  # not one of our messages: the host goes on
            if number in {int(s) for s in FORWARDED_SIGNALS}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, number)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            pidfd = self.exits.pop(pid, None)
            if pidfd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(pidfd)
                os.close(pidfd)
            connection = self.children.pop(pid, None)
            if connection is None:
                continue
            code = _exit_status(status)
            print(f"warm host: pid {pid} exited {code}", flush=True)
            with contextlib.suppress(OSError):
                _send(connection, {"exit": code})
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(connection)
            connection.close()


def _run_command(request: dict[str, Any], fds: list[int]) -> NoReturn:
    """In the forked child: become the command (its terminal, folder, environment), run the CLI, exit as it does."""
    import atexit
    import traceback

    code = 1
    try:
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["multitalk", *request["argv"]]
        _terminal_logging()  # Prefect's console handler on the command's terminal, in its colours
        from flows.cli import app

        try:
            app(args=request["argv"], prog_name="multitalk")
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
            if isinstance(done.code, str):
                print(done.code, file=sys.stderr)
        atexit._run_exitfuncs()  # what a normal exit runs: Prefect drains its events and logs to the server
    except BaseException:  # the command's own boundary: say it on its terminal, exit 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


_LOGGING_CONFIG: dict[str, Any] = {}  # Prefect's logging config as the warm-up loaded it


def _load_logging_config() -> None:
    """Load Prefect's logging config once: rendering every setting into its template is 0.1-0.2 s per command."""
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH, load_logging_config
    from prefect.settings import PREFECT_LOGGING_SETTINGS_PATH

    path = PREFECT_LOGGING_SETTINGS_PATH.value()
    _LOGGING_CONFIG.update(load_logging_config(path if path.exists() else DEFAULT_LOGGING_SETTINGS_PATH))


def _terminal_logging() -> None:
    """In a child: Prefect's logging configured as `setup_logging` does, from the host's loaded config.

    The handlers are made anew, so the console one writes to the command's terminal in its colours. The child's
    Prefect settings are the host's (the fingerprint says so), so the config is the one it would load itself.
    """
    import copy
    import logging
    import logging.config

    from prefect.logging.configuration import PROCESS_LOGGING_CONFIG, setup_logging
    from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS

    if not _LOGGING_CONFIG:
        setup_logging(incremental=False)
        return
    config = copy.deepcopy(_LOGGING_CONFIG) | {"incremental": False}
    logging.config.dictConfig(config)
    extra = logging.getLogger("prefect.extra")
    for name in PREFECT_LOGGING_EXTRA_LOGGERS.value():
        for handler in extra.handlers:
            logging.getLogger(name).addHandler(handler)
    PROCESS_LOGGING_CONFIG.update(config)


def _warm_up() -> str | None:
    """Import the render path with the command line's Prefect settings; the server URL they point at, if any."""
    import importlib
    import threading

    from flows.prefect_env import configure_local_prefect
    from flows.server import use_running_server

    configure_local_prefect()
    url = use_running_server()
    started = time.perf_counter()
    for module in WARM_MODULES:
        importlib.import_module(module)
    from multitalk.audio import piper

    for voice in piper.packaged_voices():  # every Piper line's key hashes its voice's model (60 MB): once, here
        voice.fingerprint()
    _load_logging_config()
    print(f"warm host: imported the render path in {time.perf_counter() - started:.1f} s", flush=True)
    if threading.active_count() != 1:
        raise RuntimeError(f"the warm-up left {threading.active_count() - 1} threads running; forking is unsafe")
    # What the warm-up built lives as long as the host: out of the collector's sight, a child's collections walk
    # only its own objects (a full one over the host's ~330k takes 0.2 s, and in a child it copies every shared page
    # it touches).
    gc.collect()
    gc.freeze()
    return url


def main() -> None:
    """`python -m flows.warm_host`: what `multitalk server start` runs (its log: the state folder's warm-host.log)."""
    path = socket_path()
    if path is None:
        raise SystemExit(f"warm host: the state folder's path is too long for a Unix socket: {state_dir()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    code_and_settings = fingerprint(os.environ)  # before the warm-up adds the server's URL
    host = Host(path, _warm_up(), code_and_settings)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        host.serve()


if __name__ == "__main__":
    main()
