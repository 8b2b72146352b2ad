"""Starts the analysis API in embedded mode (SQLite, local storage, local workers) and the front
end against it, each on a free loopback port. Used by `run-local.sh` (the one-command try-out)
and by the end-to-end test.

The API command is `mzforge-api` from this virtualenv if it is installed here, else
`$MZFORGE_API_PYTHON -m mzforge.api.cli` (default: the python/ package's own virtualenv,
`../python/.venv/bin/python`, which `make python` builds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

WEB = Path(__file__).resolve().parent
REPO = WEB.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_command() -> list[str]:
    here = Path(sys.executable).parent / "mzforge-api"
    if here.exists() and not os.environ.get("MZFORGE_API_PYTHON"):
        return [str(here)]
    python = os.environ.get("MZFORGE_API_PYTHON") or str(REPO / "python/.venv/bin/python")
    if not Path(python).exists():
        raise RuntimeError(
            f"no analysis API to start: {here} does not exist and neither does {python}; "
            "install it with `cd python && VIRTUAL_ENV=<venv> maturin develop --extras api` "
            "or set MZFORGE_API_PYTHON"
        )
    return [python, "-m", "mzforge.api.cli"]


def wait_ready(url: str, proc: subprocess.Popen, what: str, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; its log:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready at {url} after {seconds:.0f} s; its log:\n{log.read_text()[-4000:]}")


@dataclass
class Stack:
    """The API and the site, started in `workdir`; `stop()` ends both (by their process groups)."""

    workdir: Path
    api_url: str = ""
    web_url: str = ""
    admin_token: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, web_port: int | None = None, api_port: int | None = None, server: str = "gunicorn") -> "Stack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        api_env = {**os.environ, "MZFORGE_DATA_DIR": str(self.workdir / "api-data"), "MZFORGE_ENVIRONMENT": "local"}
        if os.environ.get("MZFORGE_API_PYTHONPATH"):  # the package's sources (web/ci.sh)
            api_env["PYTHONPATH"] = os.environ["MZFORGE_API_PYTHONPATH"]
        for key in ("DATABASE_URL", "MZFORGE_UPLOADS_BUCKET", "MZFORGE_RESULTS_BUCKET", "MZFORGE_STATE_MACHINE_ARN",
                    "MZFORGE_DATABASE_SECRET_ARN"):
            api_env.pop(key, None)
        cmd = api_command()
        token = subprocess.run(cmd + ["create-user", f"site-admin-{os.getpid()}@localhost", "--admin"], env=api_env,
                               cwd=self.workdir, check=True, capture_output=True, text=True, timeout=120)
        self.admin_token = token.stdout.strip().splitlines()[-1]
        api_port = api_port or free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        api_log = self.workdir / "api.log"
        self.procs.append(subprocess.Popen(cmd + ["serve", "--host", "127.0.0.1", "--port", str(api_port)],
                                           env=api_env, cwd=self.workdir, stdout=api_log.open("w"),
                                           stderr=subprocess.STDOUT, start_new_session=True))
        wait_ready(self.api_url + "/readyz", self.procs[-1], "the analysis API", api_log)

        web_env = {**os.environ, "MZFORGE_ENVIRONMENT": "local", "MZFORGE_API_URL": self.api_url,
                   "MZFORGE_API_ADMIN_TOKEN": self.admin_token, "MZFORGE_WEB_DATA_DIR": str(self.workdir),
                   "DJANGO_STATIC_ROOT": str(self.workdir / "static"), "PYTHONUNBUFFERED": "1"}
        web_env.pop("DATABASE_URL", None)
        manage = [sys.executable, str(WEB / "manage.py")]
        subprocess.run(manage + ["migrate", "--noinput", "-v", "0"], env=web_env, check=True, timeout=120)
        web_port = web_port or free_port()
        self.web_url = f"http://127.0.0.1:{web_port}"
        web_log = self.workdir / "web.log"
        if server == "gunicorn":
            # What production runs: collected static files served by whitenoise, gunicorn workers.
            subprocess.run(manage + ["collectstatic", "--noinput", "-v", "0"], env=web_env, check=True, timeout=120)
            gunicorn = str(Path(sys.executable).parent / "gunicorn")
            web_cmd = [gunicorn, "mzforge_web.wsgi:application", "--bind", f"127.0.0.1:{web_port}",
                       "--workers", "2", "--threads", "4", "--timeout", "300", "--access-logfile", "-"]
        else:
            # Static files come from the app's folder (settings: WHITENOISE_USE_FINDERS in the
            # try-out), so DEBUG stays off: a scientist trying the site sees its own pages for a
            # wrong address or a failure, not Django's debug pages (DJANGO_DEBUG=1 brings those).
            web_env.setdefault("DJANGO_DEBUG", "0")
            web_cmd = manage + ["runserver", "--noreload", f"127.0.0.1:{web_port}"]
        self.procs.append(subprocess.Popen(web_cmd, env=web_env, cwd=WEB, stdout=web_log.open("w"),
                                           stderr=subprocess.STDOUT, start_new_session=True))
        wait_ready(self.web_url + "/readyz", self.procs[-1], "the front end", web_log)
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description="Try mzforge's front end against the embedded analysis API.")
    parser.add_argument("--port", type=int, default=8000, help="the site's port (default 8000)")
    parser.add_argument("--api-port", type=int, default=None, help="the API's port (default: a free one)")
    parser.add_argument("--dir", type=Path, default=WEB / ".run-local", help="where data, databases and logs go")
    parser.add_argument("--fresh", action="store_true", help="start from empty databases")
    args = parser.parse_args()
    if args.fresh and args.dir.exists():
        shutil.rmtree(args.dir)
    stack = Stack(args.dir)
    # SIGTERM (timeout, systemd, a closed terminal) stops both servers as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGHUP, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.start(web_port=args.port, api_port=args.api_port, server="runserver")
        print(f"mzforge front end: {stack.web_url}/  (API {stack.api_url}; data and logs in {args.dir})")
        print("Password-reset e-mails are printed in web.log. Ctrl-C stops both.")
        while all(p.poll() is None for p in stack.procs):
            time.sleep(1)
        print("a server stopped; see the logs in", args.dir, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
