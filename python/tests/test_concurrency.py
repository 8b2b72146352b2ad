"""Long calls release the GIL (two `process` calls overlap), and `fork()` after or during
use does not deadlock: every run (and the deconvolution of a dense spectrum) builds its own
worker pool and drops it before returning."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import mzforge

from mzftest import FIXTURES

SIM = FIXTURES / "sim_profile.mzML"
WATCHDOG_SECONDS = 300


@pytest.fixture
def watchdog():
    # A call that held the GIL while blocked would freeze every Python thread, timeouts
    # included; faulthandler's watchdog runs in C and turns such a hang into a failure.
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "stream.mzML"
    os.mkfifo(path)
    yield path
    # Unblock a reader still waiting for a writer, whatever the test did.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def feed(fifo, data: bytes) -> None:
    with open(fifo, "wb") as w:
        w.write(data)


def start(target) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run():
        try:
            box["value"] = target()
        except BaseException as e:  # reported by the test
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.parametrize("call", ["process", "open"])
def test_a_blocked_call_lets_another_process_call_run(watchdog, fifo, call):
    # Thread A waits inside the engine for its input (a named pipe nobody writes yet).
    if call == "process":
        a, a_box = start(lambda: mzforge.process(fifo, threads=1))
    else:
        a, a_box = start(lambda: [s.native_id for s in mzforge.open(fifo)])
    time.sleep(0.2)
    assert a.is_alive()
    # Thread B runs a whole process call meanwhile: only possible if A released the GIL.
    b, b_box = start(lambda: mzforge.process(SIM, threads=1))
    b.join(120)
    assert not b.is_alive() and "value" in b_box, b_box.get("error")
    assert a.is_alive() and not a_box, "A finished without input?"
    feed(fifo, SIM.read_bytes())
    a.join(120)
    assert "value" in a_box, a_box.get("error")
    if call == "process":
        assert a_box["value"].peaks.equals(b_box["value"].peaks)
    else:
        assert len(a_box["value"]) == 20


def wait_child(pid: int, seconds: float = 120) -> int:
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child deadlocked")
        time.sleep(0.02)


def dense_centroids() -> tuple[np.ndarray, np.ndarray]:
    """60,000 centroids 0.005 m/z apart, dense enough to be deconvolved on a pool."""
    rng = np.random.default_rng(7)
    mz = 400.0 + 0.005 * np.arange(60_000)
    return mz, rng.uniform(1.0, 100.0, mz.size).astype(np.float32)


def child_work() -> bool:
    result = mzforge.process(SIM, threads=2)
    spectra = list(mzforge.open(SIM))
    peaks = mzforge.centroid(spectra[0].mz, spectra[0].intensity)
    dense = mzforge.deconvolve(*dense_centroids(), threads=2)
    return (
        result.summary["spectra_written"] == 20
        and len(spectra) == 20
        and len(peaks) > 0
        and len(dense.peak_charge) == 60_000
    )


def fork_and_check() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if child_work() else 1)
        except BaseException:
            os._exit(2)
    return wait_child(pid)


def test_fork_after_use_does_not_deadlock():
    mzforge.process(SIM, threads=2)
    mzforge.deconvolve(*dense_centroids(), threads=2)  # on a pool of its own
    reader = mzforge.open(SIM)
    reader[3]
    assert fork_and_check() == 0
    assert len(reader) == 20  # the parent's reader is unaffected


def test_fork_while_another_thread_is_inside_a_run(watchdog, fifo):
    a, a_box = start(lambda: mzforge.process(fifo, threads=2))
    time.sleep(0.2)
    assert a.is_alive()
    assert fork_and_check() == 0
    feed(fifo, SIM.read_bytes())
    a.join(120)
    assert "value" in a_box, a_box.get("error")


@pytest.mark.parametrize("out", [False, True])
def test_ctrl_c_stops_a_long_run(watchdog, fifo, tmp_path, out):
    # A child process runs `process` on a named pipe that the test keeps feeding with
    # spectra, as a very long run. Ctrl-C (SIGINT) must stop the run and raise
    # KeyboardInterrupt from `process`: the child stops reading, so the pipe breaks while the
    # test still has spectra to write. (Before, the run went on to the end of its input and
    # Python raised only after it returned.)
    sim = SIM.read_bytes()
    first, end = sim.index(b"<spectrum "), sim.index(b"</spectrum>") + len(b"</spectrum>")
    spectrum = sim[first:end]
    assert spectrum.startswith(b'<spectrum index="0" id="scan=1"')
    results = tmp_path / "results"
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, str(fifo), str(results) if out else ""],
        stdout=subprocess.PIPE,
        text=True,
    )
    total = 20_000  # far more than the child reads between two checks for Ctrl-C
    written = 0
    try:
        with open(fifo, "wb") as w:  # opens once the child's run has opened the pipe
            w.write(sim[:first])
            for i in range(total):
                tag = f'<spectrum index="{i}" id="scan={i + 1}"'.encode()
                w.write(tag + spectrum[len(b'<spectrum index="0" id="scan=1"') :])
                written += 1
                if i == 2:
                    child.send_signal(signal.SIGINT)
            w.write(b"</spectrumList></run></mzML></indexedmzML>\n")
    except BrokenPipeError:
        pass
    stdout, _ = child.communicate(timeout=120)
    assert stdout.strip() == "KeyboardInterrupt", stdout
    assert written < total
    if out:
        assert not results.exists() or not any(results.iterdir())  # nothing partial is kept


CTRL_C_CHILD = """
import sys
import mzforge
path, out = sys.argv[1], sys.argv[2] or None
try:
    result = mzforge.process(path, out=out, threads=1, batch_size=1, deconvolve=False)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
else:
    print("finished", result.summary["spectra_written"], flush=True)
"""
