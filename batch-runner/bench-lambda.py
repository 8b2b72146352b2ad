"""Cold start of the mzforge-lambda binary on a local invoke; preprocess of many inputs behind
S3 latency.

usage: python3 batch-runner/bench-lambda.py BOOTSTRAP [RUNS] [--qemu]
       python3 batch-runner/bench-lambda.py BOOTSTRAP --inputs N [--latency-ms L] [RUNS]

Plays AWS Lambda's Runtime API (the provided.al2023 protocol: GET .../invocation/next, POST
.../response) on 127.0.0.1, starts a moto S3 server with a small mzML and a request, and for RUNS
fresh processes measures: spawn -> first /next poll (init), and spawn -> first response of a
`preprocess` invocation (init + S3 client set-up + reading and probing the input), then one warm
invocation in the same process. Prints medians in milliseconds. --qemu runs an arm64 BOOTSTRAP
under qemu-aarch64 (much slower than Graviton; an upper bound).

With --inputs N: N small MGF inputs under one prefix, and S3 reached through a proxy that holds
each request L ms (default 20, about S3's first-byte latency) before passing it on; prints the
median of RUNS warm `preprocess` invocations (each probes every input and writes analysis.json).
"""

import http.server
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.first_poll = None
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request, client_address):
        pass  # the killed process resets its connection


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        if server.first_poll is None:
            server.first_poll = time.perf_counter()
        request_id, payload = server.events.get()
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 300_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:0:function:mzforge")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.results.put((self.path, json.loads(body or b"null"), time.perf_counter()))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class LatencyProxy(threading.Thread):
    """A TCP proxy to 127.0.0.1:``port`` that holds each request ``latency`` seconds: data from the
    client after an answer (or first on a connection) starts a request."""

    def __init__(self, port: int, latency: float):
        super().__init__(daemon=True)
        self.target, self.latency = port, latency
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]

    def run(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(("127.0.0.1", self.target))
            answered = threading.Event()
            answered.set()
            threading.Thread(target=self.pipe, args=(client, server, answered, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(server, client, answered, False), daemon=True).start()

    def pipe(self, source, sink, answered, requests):
        try:
            while data := source.recv(1 << 16):
                if requests and answered.is_set():
                    answered.clear()
                    time.sleep(self.latency)
                elif not requests:
                    answered.set()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def many_inputs(bootstrap: str, env: dict, s3, inputs: int, latency_ms: float, runs: int) -> None:
    mgf = b"BEGIN IONS\nTITLE=s1\nPEPMASS=500.25\nCHARGE=2+\n100.1 10\n200.2 20\nEND IONS\n"
    for i in range(inputs):
        s3.put_object(Bucket="uploads", Key=f"many/sample_{i:05d}.mgf", Body=mgf)
    s3.put_object(Bucket="uploads", Key="requests/many.json", Body=json.dumps({"inputs": ["many/"]}))
    proxy = LatencyProxy(int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]), latency_ms / 1000)
    proxy.start()
    env = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}")
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{api.server_address[1]}"
    process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    event = {"analysisId": "many", "request": {"bucket": "uploads", "key": "requests/many.json"}}
    seconds = []
    try:
        for n in range(runs + 1):  # the first invocation is the cold one, left out
            sent = time.perf_counter()
            api.events.put((f"m{n}", event))
            path, result, answered = api.results.get(timeout=1800)
            assert path.endswith("/response"), result
            assert result["inputCount"] == inputs, result
            if n:
                seconds.append(answered - sent)
    finally:
        process.kill()
        process.wait()
        api.shutdown()
    print(json.dumps({"bootstrap": bootstrap, "inputs": inputs, "latency_ms": latency_ms, "runs": runs,
                      "preprocess_seconds_median": round(statistics.median(seconds), 2)}))


def option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main():
    bootstrap = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else 5
    qemu = "--qemu" in sys.argv
    port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", AWS_LAMBDA_FUNCTION_NAME="mzforge",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1769", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               MZFORGE_STEP="preprocess", MZFORGE_UPLOADS_BUCKET="uploads", MZFORGE_RESULTS_BUCKET="results")
    try:
        for _ in range(100):
            try:
                s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                                  aws_access_key_id="bench", aws_secret_access_key="bench")
                s3.create_bucket(Bucket="uploads")
                break
            except Exception:
                time.sleep(0.1)
        s3.create_bucket(Bucket="results")
        if "--inputs" in sys.argv:
            positional = [a for a in sys.argv[2:] if a.isdigit() and sys.argv[sys.argv.index(a) - 1] not in
                          ("--inputs", "--latency-ms")]
            many_inputs(bootstrap, env, s3, int(option("--inputs", "1000")),
                        float(option("--latency-ms", "20")), int(positional[0]) if positional else 3)
            return
        s3.upload_file(os.path.join(DATA, "profile", "three_test_scans.mzML"), "uploads", "d/three_test_scans.mzML")
        s3.put_object(Bucket="uploads", Key="requests/cold.json", Body=json.dumps({"inputs": ["d/"]}))
        event = {"analysisId": "cold", "request": {"bucket": "uploads", "key": "requests/cold.json"}}
        init, first, warm = [], [], []
        for n in range(runs):
            api = RuntimeApi()
            threading.Thread(target=api.serve_forever, daemon=True).start()
            env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{api.server_address[1]}"
            command = (["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"] if qemu else []) + [bootstrap]
            started = time.perf_counter()
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            api.events.put((f"r{n}a", event))
            path, result, answered = api.results.get(timeout=60)
            assert path.endswith("/response"), result
            assert result["route"] == "lambda", result
            init.append((api.first_poll - started) * 1000)
            first.append((answered - started) * 1000)
            sent = time.perf_counter()
            api.events.put((f"r{n}b", event))
            path, result, answered = api.results.get(timeout=60)
            assert path.endswith("/response"), result
            warm.append((answered - sent) * 1000)
            process.kill()
            process.wait()
            api.shutdown()
        print(json.dumps({
            "bootstrap": bootstrap, "qemu": qemu, "runs": runs,
            "init_ms_median": round(statistics.median(init), 1),
            "cold_first_response_ms_median": round(statistics.median(first), 1),
            "warm_response_ms_median": round(statistics.median(warm), 1),
        }))
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
