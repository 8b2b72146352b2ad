"""Where analyses run.

``LocalExecutor`` (embedded mode): a dispatcher thread in the server claims queued analyses from
the database (atomically, so several server processes can share one database) and starts each in
its own process (``python -m mzforge.api.worker ID``), at most ``MZFORGE_WORKERS`` at a time. The
worker records its outcome itself; when a worker dies without doing so (a signal, out of memory),
the dispatcher marks the analysis failed with the exit status. Cancelling kills the process.
While the database is away the dispatcher keeps its dead workers until their outcome is recorded,
and a claim whose COMMIT failed is put back in the queue if it happened.

``StepFunctionsExecutor`` (AWS mode): writes the analysis request (``requests/<analysisId>.json``
in the uploads bucket, schema ``batch-runner/schemas/request.json``) and starts the state machine
with ``{analysisId, request: {bucket, key}}`` under the execution name ``analysisId`` (the
bucket's trigger Lambda would start the same execution; the name makes the second start a no-op).
Status is reconciled from the results bucket (``summary.json`` / ``failure.json``) and
``DescribeExecution``; an analysis recorded but with no start recorded (the database connection
was lost in between) is started when it is next read.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from . import layout
from .layout import summary_for_api
from .db import TERMINAL, Analysis, database_unavailable, utcnow
from .params import engine_params_json
from .settings import Settings
from .storage import Storage

log = logging.getLogger("mzforge.api")


def exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the analysis worker was killed by {name}"
    return f"the analysis worker exited with status {code} without recording a result"


class Executor:
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, session: Session, analysis: Analysis) -> None: ...

    def cancel(self, analysis: Analysis) -> None: ...

    def reconcile(self, session: Session, analysis: Analysis) -> None: ...


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings, sessions: sessionmaker, storage: Storage) -> None:
        self.settings = settings
        self.sessions = sessions
        self.storage = storage
        self.running: dict[int, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.host = socket.gethostname()
        # Marks this process's claims until the worker's pid is recorded.
        self.claim_mark = f"{self.host} pid ? {uuid.uuid4().hex[:12]}"
        self.claims_in_doubt = False
        self.database_away = False

    def start(self) -> None:
        self._recover_orphans()
        self.thread = threading.Thread(target=self._loop, name="mzforge-dispatcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread:
            self.thread.join(timeout=10)
        with self.lock:
            for proc in self.running.values():
                proc.kill()
            for proc in self.running.values():
                proc.wait()

    def submit(self, session: Session, analysis: Analysis) -> None:
        self.wake.set()

    def cancel(self, analysis: Analysis) -> None:
        with self.lock:
            proc = self.running.get(analysis.id)
        if proc is not None and proc.poll() is None:
            proc.kill()
        self.wake.set()

    def _recover_orphans(self) -> None:
        """Analyses this host was running when the server stopped: failed, unless the worker
        process still lives (it records its own outcome)."""
        with self.sessions() as s:
            rows = s.scalars(select(Analysis).where(Analysis.status == "running",
                                                    Analysis.backend == "local")).all()
            for a in rows:
                host, _, pid = (a.runner or "").partition(" pid ")
                if host != self.host or not pid.isdigit() or _alive(int(pid)):
                    continue
                s.execute(update(Analysis).where(Analysis.id == a.id, Analysis.status == "running")
                          .values(status="failed", finished_at=utcnow(),
                                  error="the server stopped while this analysis ran"))
            s.commit()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self._reap()
                self._dispatch()
            except Exception as e:  # noqa: BLE001 - keep dispatching
                if not database_unavailable(e):
                    log.exception("dispatcher")
                elif not self.database_away:  # said once per outage, not five times a second
                    self.database_away = True
                    log.warning("dispatcher: the database is unavailable (%s); retrying",
                                str(e).splitlines()[0])
            else:
                if self.database_away:
                    self.database_away = False
                    log.warning("dispatcher: the database is back")
            self.wake.wait(0.2)
            self.wake.clear()

    def _reap(self) -> None:
        with self.lock:
            done = {aid: p for aid, p in self.running.items() if p.poll() is not None}
        for aid, proc in done.items():
            with self.sessions() as s:
                res = s.execute(
                    update(Analysis)
                    .where(Analysis.id == aid, Analysis.status == "running")
                    .values(status="failed", finished_at=utcnow(),
                            error=exit_description(proc.returncode))
                )
                s.commit()
                if res.rowcount:
                    a = s.get(Analysis, aid)
                    # Whatever the dead worker wrote is not a result.
                    self.storage.delete_prefix("results", layout.results_prefix(a.run_id))
                    self.storage.delete("results", layout.summary_key(a.run_id))
            # Forgotten only once its outcome is recorded: with the database away the next
            # round tries again (the analysis is never left `running` with no worker).
            with self.lock:
                self.running.pop(aid, None)

    def _requeue_lost_claims(self) -> None:
        """A claim whose COMMIT failed may have happened: such analyses are `running` under this
        process's mark with no worker. They go back to the queue."""
        with self.sessions() as s:
            with self.lock:
                mine = list(self.running)
            s.execute(update(Analysis)
                      .where(Analysis.status == "running", Analysis.runner == self.claim_mark,
                             Analysis.id.not_in(mine))
                      .values(status="queued", started_at=None, runner=None))
            s.commit()
        self.claims_in_doubt = False

    def _dispatch(self) -> None:
        if self.claims_in_doubt:
            self._requeue_lost_claims()
        free = self.settings.workers - len(self.running)
        if free <= 0:
            return
        with self.sessions() as s:
            ids = s.scalars(select(Analysis.id).where(Analysis.status == "queued",
                                                      Analysis.backend == "local")
                            .order_by(Analysis.id).limit(free)).all()
        for aid in ids:
            with self.sessions() as s:
                claimed = s.execute(update(Analysis)
                                    .where(Analysis.id == aid, Analysis.status == "queued")
                                    .values(status="running", started_at=utcnow(),
                                            runner=self.claim_mark))
                try:
                    s.commit()
                except Exception:
                    self.claims_in_doubt = True
                    raise
                if not claimed.rowcount:
                    continue  # another server process took it, or it was cancelled
                env = {**os.environ, **self.settings.env}
                proc = subprocess.Popen([sys.executable, "-m", "mzforge.api.worker", str(aid)],
                                        env=env, stdin=subprocess.DEVNULL)
                with self.lock:
                    self.running[aid] = proc
                s.execute(update(Analysis).where(Analysis.id == aid)
                          .values(runner=f"{self.host} pid {proc.pid}"))
                s.commit()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StepFunctionsExecutor(Executor):
    name = "stepfunctions"

    def __init__(self, settings: Settings, sessions: sessionmaker, storage: Storage) -> None:
        import boto3

        self.settings = settings
        self.sessions = sessions
        self.storage = storage
        self.sfn = boto3.client("stepfunctions")
        assert settings.state_machine_arn and settings.uploads_bucket

    def execution_arn(self, run_id: str) -> str:
        arn = self.settings.state_machine_arn or ""
        return arn.replace(":stateMachine:", ":execution:", 1) + f":{run_id}"

    def submit(self, session: Session, analysis: Analysis) -> None:
        analysis.runner = self._start(analysis)
        analysis.status = "running"
        analysis.started_at = utcnow()

    def _start(self, analysis: Analysis) -> str:
        """Writes the request and starts the execution (named by the analysisId, so starting
        it again is a no-op); returns the execution's ARN."""
        request = {
            "inputs": [i["key"] for i in analysis.inputs],
            "params": engine_params_json(analysis.params),
            "mzml": False,
        }
        key = layout.request_key(analysis.run_id)
        self.storage.put_bytes("uploads", key, json.dumps(request, indent=1).encode())
        try:
            out = self.sfn.start_execution(
                stateMachineArn=self.settings.state_machine_arn,
                name=analysis.run_id,
                input=json.dumps({"analysisId": analysis.run_id,
                                  "request": {"bucket": self.settings.uploads_bucket, "key": key}}),
            )
            arn = out["executionArn"]
        except self.sfn.exceptions.ExecutionAlreadyExists:
            arn = self.execution_arn(analysis.run_id)
        return arn

    def cancel(self, analysis: Analysis) -> None:
        # No runner: the start may have happened without being recorded; its ARN is known.
        arn = analysis.runner or self.execution_arn(analysis.run_id)
        try:
            self.sfn.stop_execution(executionArn=arn, cause="cancelled through the API")
        except Exception:  # noqa: BLE001 - already finished or unknown: the status says cancelled
            log.warning("stop_execution %s failed", arn, exc_info=True)

    def reconcile(self, session: Session, analysis: Analysis) -> None:
        if analysis.status in TERMINAL:
            return
        now = utcnow()
        checked = analysis.checked_at
        if checked is not None and checked.tzinfo is None:
            checked = checked.replace(tzinfo=now.tzinfo)
        if checked and now - checked < timedelta(seconds=self.settings.reconcile_seconds):
            return
        if analysis.status == "queued" and not analysis.runner:
            # Recorded, its start not: the connection was lost at the COMMIT of the row (which
            # happened, its answer lost) or of the start. Started (again) here.
            arn = self._start(analysis)
            session.execute(update(Analysis).where(Analysis.id == analysis.id, Analysis.status == "queued",
                                                   Analysis.runner.is_(None))
                            .values(status="running", started_at=now, runner=arn, checked_at=now))
            session.commit()
            session.refresh(analysis)
            return
        values: dict[str, Any] = {"checked_at": now}
        summary = self.storage.get_bytes("results", layout.summary_key(analysis.run_id))
        failure = None if summary else self.storage.get_bytes("results", layout.failure_key(analysis.run_id))
        if summary:
            s = json.loads(summary)
            prefix = layout.results_prefix(analysis.run_id)
            def url_of(key: str) -> str:
                return self.storage.url("uploads", key)

            inputs = layout.items_with_outcomes(analysis.inputs, s, url_of, prefix)
            values.update(status="succeeded", summary=summary_for_api(s, inputs, url_of),
                          inputs=inputs,
                          finished_at=now, result_location=self.storage.url("results", prefix))
        elif failure:
            f = json.loads(failure)
            error = f.get("cause") or f.get("error") or ""
            for item in analysis.inputs:  # the files' names, not their storage keys
                error = error.replace(self.storage.url("uploads", item["key"]), item["filename"])
            values.update(status="failed", finished_at=now, error=error)
        elif analysis.runner:
            d = self.sfn.describe_execution(executionArn=analysis.runner)
            state = d["status"]
            if state in ("FAILED", "TIMED_OUT", "ABORTED"):
                values.update(status="failed", finished_at=d.get("stopDate") or now,
                              error=f"execution {state.lower()}: {d.get('error', '')} {d.get('cause', '')}".strip())
        session.execute(update(Analysis).where(Analysis.id == analysis.id,
                                               Analysis.status.in_(("queued", "running")))
                        .values(**values))
        session.commit()
        session.refresh(analysis)


def make_executor(settings: Settings, sessions: sessionmaker, storage: Storage) -> Executor:
    if settings.backend == "stepfunctions":
        return StepFunctionsExecutor(settings, sessions, storage)
    return LocalExecutor(settings, sessions, storage)
