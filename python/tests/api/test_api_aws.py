"""AWS mode, chosen by configuration only, against a moto server (S3 and Step Functions):

* S3 storage with the local executor: uploads and results in the two buckets;
* the Step Functions executor: the API writes the analysis request (validated here against
  batch-runner/schemas/request.json), starts the execution and reconciles its status. moto
  records executions but does not run the real state machine, so ``emulate_state_machine`` plays
  its part: it runs the real engine (`mzforge run s3://... --out s3://...`, the code the Lambda
  and Batch steps run) into ``analyses/<id>/results/`` and writes ``summary.json`` as Postprocess
  would, or ``failure.json`` as RecordFailure would.
"""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from apitest import AWS_ENV, REPO, api_client, mzforge_cli, shared


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in {**AWS_ENV, "AWS_ENDPOINT_URL": moto}.items():
        monkeypatch.setenv(k, v)
    tag = uuid.uuid4().hex[:10]
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto, "MZFORGE_UPLOADS_BUCKET": f"uploads-{tag}",
           "MZFORGE_RESULTS_BUCKET": f"results-{tag}", "MZFORGE_ENVIRONMENT": "test",
           "MZFORGE_RECONCILE_SECONDS": "0"}
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=env["MZFORGE_UPLOADS_BUCKET"])
    s3.create_bucket(Bucket=env["MZFORGE_RESULTS_BUCKET"])
    return env


def _keys(bucket: str) -> list[str]:
    return sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", []))


def _cli_tables(path: Path, out: Path) -> dict:
    subprocess.run([str(mzforge_cli()), "run", str(path), "--out", str(out), "-q"], check=True)
    d = next(out.iterdir())
    return {t: pq.read_table(d / f"{t}.parquet") for t in ("spectra", "peaks", "features")}


def test_s3_storage_with_local_workers(aws: dict, tmp_path: Path) -> None:
    path = shared("mgf/small.mgf")
    env = {**aws, "MZFORGE_DATA_DIR": str(tmp_path / "d"), "DATABASE_URL": f"sqlite:///{tmp_path}/db"}
    with api_client(env) as api:
        assert api.client.get("/readyz").status_code == 200
        up = api.upload(path).json()
        assert _keys(aws["MZFORGE_UPLOADS_BUCKET"]) == [f"uploads/{api.client.get('/v1/me', headers=api.h()).json()['id']}/" +
                                                       _keys(aws["MZFORGE_UPLOADS_BUCKET"])[0].split("/", 2)[2]]
        a = api.wait(api.analyse([up["id"]]).json()["id"])
        assert a["status"] == "succeeded", a
        assert a["result_location"].startswith(f"s3://{aws['MZFORGE_RESULTS_BUCKET']}/analyses/")
        keys = _keys(aws["MZFORGE_RESULTS_BUCKET"])
        assert keys[-1].endswith("/summary.json") and any(k.endswith("/small/manifest.json") for k in keys)
        expected = _cli_tables(path, tmp_path / "cli")
        for table in ("spectra", "peaks", "features"):
            r = api.client.get(f"/v1/analyses/{a['id']}/results/{table}?format=parquet", headers=api.h())
            assert pq.read_table(io.BytesIO(r.content)).drop_columns(["upload_id"]).equals(expected[table])
        r = api.client.get(f"/v1/analyses/{a['id']}/spectra/0/plot.svg", headers=api.h())
        assert r.status_code == 200 and b"<svg" in r.content[:2000]
    # Not ready when a bucket is gone.
    with api_client({**env, "MZFORGE_RESULTS_BUCKET": "missing-bucket-x", "DATABASE_URL": f"sqlite:///{tmp_path}/db2"}) as api:
        assert api.client.get("/readyz").status_code == 503


def _toml(d: dict, prefix: str = "") -> str:
    """The engine's params as TOML (`mzforge run --config`), nested tables included."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    out = (f"[{prefix}]\n" if prefix and lines else "") + "".join(line + "\n" for line in lines)
    for k, v in tables:
        out += _toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def emulate_state_machine(execution_input: dict, results_bucket: str, tmp: Path) -> None:
    s3 = boto3.client("s3")
    run_id = execution_input["analysisId"]
    req = execution_input["request"]
    request = json.loads(s3.get_object(Bucket=req["bucket"], Key=req["key"])["Body"].read())
    config = tmp / f"{run_id}.toml"
    config.write_text(_toml(request["params"]))
    out = f"s3://{results_bucket}/analyses/{run_id}/results"
    inputs = [f"s3://{req['bucket']}/{k}" for k in request["inputs"]]
    r = subprocess.run([str(mzforge_cli()), "run", *inputs, "--out", out, "--config", str(config),
                        "--json", "-q"], capture_output=True, text=True)
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    done = [d for d in lines if d.get("status") != "error"]
    # As Postprocess: an input that failed on its own is listed; with none done, the analysis fails.
    failed = [{"index": inputs.index(d["input"]), "input": d["input"], "error": "Mzforge.BadInput",
               "cause": d["error"]} for d in lines if d.get("status") == "error"]
    if not done:
        cause = failed[0]["cause"] if failed else r.stderr.strip().removeprefix("error: ")
        s3.put_object(Bucket=results_bucket, Key=f"analyses/{run_id}/failure.json", Body=json.dumps(
            {"analysisId": run_id, "status": "failed", "error": "Mzforge.BadInput", "cause": cause,
             "retryable": False, "recorded": True, "failureKey": f"analyses/{run_id}/failure.json",
             "note": None}))
        return
    summary_inputs = [{**d["qc"], "index": inputs.index(d["input"]), "input": d["input"],
                       "output": d["output"] + "/"} for d in done]
    summary = {"analysisId": run_id, "status": "complete", "mzforgeVersion": "emulated",
               "route": "lambda", "completedAt": 0, "params": request["params"],
               "inputs": summary_inputs, "failed": failed,
               "totals": {"spectra": sum(i["spectra_written"] for i in summary_inputs),
                          "peaks": sum(i["peaks"] for i in summary_inputs),
                          "tic": sum(i["tic_total"] for i in summary_inputs),
                          "warnings": sum(i["warnings_total"] for i in summary_inputs)}}
    s3.put_object(Bucket=results_bucket, Key=f"analyses/{run_id}/summary.json", Body=json.dumps(summary))


@pytest.fixture
def sfn_env(aws: dict, postgres, tmp_path: Path) -> dict:
    sfn = boto3.client("stepfunctions")
    sm = sfn.create_state_machine(
        name=f"mzforge-{uuid.uuid4().hex[:8]}", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    return {**aws, "MZFORGE_STATE_MACHINE_ARN": sm["stateMachineArn"],
            "MZFORGE_DATA_DIR": str(tmp_path / "d"), "DATABASE_URL": postgres.new_database()}


def test_step_functions_executions(sfn_env: dict, tmp_path: Path) -> None:
    import jsonschema  # the api-test extra: a missing module fails, never skips

    schema = json.loads((REPO / "batch-runner" / "schemas" / "request.json").read_text())
    sfn = boto3.client("stepfunctions")
    path = shared("profile/three_test_scans.mzML")
    with api_client(sfn_env) as api:
        up = api.upload(path).json()
        r = api.analyse([up["id"]], {"min_snr": 1.0})
        assert r.status_code == 201, r.text
        a = r.json()
        assert a["backend"] == "stepfunctions" and a["status"] == "running"
        executions = sfn.list_executions(stateMachineArn=sfn_env["MZFORGE_STATE_MACHINE_ARN"])["executions"]
        assert len(executions) == 1
        execution = sfn.describe_execution(executionArn=executions[0]["executionArn"])
        exec_input = json.loads(execution["input"])
        assert exec_input["request"]["bucket"] == sfn_env["MZFORGE_UPLOADS_BUCKET"]
        assert exec_input["request"]["key"] == f"requests/{exec_input['analysisId']}.json"
        assert execution["name"] == exec_input["analysisId"]
        request = json.loads(boto3.client("s3").get_object(**{"Bucket": exec_input["request"]["bucket"],
                                                              "Key": exec_input["request"]["key"]})["Body"].read())
        jsonschema.validate(request, schema)
        assert request["params"]["centroid"]["min_snr"] == 1.0
        # Still running (moto keeps executions RUNNING) until the results appear.
        assert api.client.get(f"/v1/analyses/{a['id']}", headers=api.h()).json()["status"] == "running"
        assert api.client.get(f"/v1/analyses/{a['id']}/results/peaks", headers=api.h()).status_code == 409
        emulate_state_machine(exec_input, sfn_env["MZFORGE_RESULTS_BUCKET"], tmp_path)
        done = api.client.get(f"/v1/analyses/{a['id']}", headers=api.h()).json()
        assert done["status"] == "succeeded", done
        expected = {}
        subprocess.run([str(mzforge_cli()), "run", str(path), "--out", str(tmp_path / "cli"), "-q",
                        "--min-snr", "1"], check=True)
        for table in ("spectra", "peaks", "features"):
            expected = pq.read_table(tmp_path / "cli" / "three_test_scans" / f"{table}.parquet")
            r = api.client.get(f"/v1/analyses/{a['id']}/results/{table}?format=parquet", headers=api.h())
            assert pq.read_table(io.BytesIO(r.content)).drop_columns(["upload_id"]).equals(expected)
        assert done["summary"]["peaks"] == expected.num_rows or done["summary"]["peaks"] > 0
        r = api.client.get(f"/v1/analyses/{a['id']}/spectra/0", headers=api.h())
        assert r.status_code == 200 and r.json()["profile"] is not None

        # A failing input: failure.json's cause becomes the error.
        data = shared("runs/BSA1.mzML").read_bytes()
        cut = tmp_path / "BSA1_cut.mzML"
        cut.write_bytes(data[: len(data) // 2])
        bad = api.analyse([api.upload(cut).json()["id"]], {"on_bad_spectrum": "fail"}).json()
        arn = sfn.list_executions(stateMachineArn=sfn_env["MZFORGE_STATE_MACHINE_ARN"])["executions"]
        bad_exec = next(e for e in arn if e["name"].startswith(f"test-{bad['id']}-"))
        emulate_state_machine(json.loads(sfn.describe_execution(executionArn=bad_exec["executionArn"])["input"]),
                              sfn_env["MZFORGE_RESULTS_BUCKET"], tmp_path)
        failed = api.client.get(f"/v1/analyses/{bad['id']}", headers=api.h()).json()
        assert failed["status"] == "failed" and "malformed input" in failed["error"], failed
        # Named by the file's name, not its storage key (s3://.../uploads/<user>/<uuid>/...).
        assert "s3://" not in failed["error"] and "BSA1_cut.mzML" in failed["error"], failed
        assert api.client.get(f"/v1/analyses/{bad['id']}/results/spectra", headers=api.h()).status_code == 409

        # A failing input among others: their results stand, it is listed with its reason.
        mixed = api.analyse([up["id"], api.upload(cut).json()["id"]], {"on_bad_spectrum": "fail"}).json()
        arn = sfn.list_executions(stateMachineArn=sfn_env["MZFORGE_STATE_MACHINE_ARN"])["executions"]
        mixed_exec = next(e for e in arn if e["name"].startswith(f"test-{mixed['id']}-"))
        emulate_state_machine(json.loads(sfn.describe_execution(executionArn=mixed_exec["executionArn"])["input"]),
                              sfn_env["MZFORGE_RESULTS_BUCKET"], tmp_path)
        mixed = api.client.get(f"/v1/analyses/{mixed['id']}", headers=api.h()).json()
        assert mixed["status"] == "succeeded", mixed
        (failed_input,) = mixed["summary"]["failed_inputs"]
        assert failed_input["filename"] == "BSA1_cut.mzML" and "malformed input" in failed_input["cause"]
        assert "s3://" not in failed_input["cause"], failed_input  # the file's name, not its key
        r = api.client.get(f"/v1/analyses/{mixed['id']}/results/peaks?format=parquet", headers=api.h())
        assert set(pq.read_table(io.BytesIO(r.content))["upload_id"].to_pylist()) == {up["id"]}

        # Cancelling stops the execution.
        c = api.analyse([up["id"]]).json()
        r = api.client.delete(f"/v1/analyses/{c['id']}", headers=api.h())
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        ex = next(e for e in sfn.list_executions(stateMachineArn=sfn_env["MZFORGE_STATE_MACHINE_ARN"])["executions"]
                  if e["name"].startswith(f"test-{c['id']}-"))
        assert sfn.describe_execution(executionArn=ex["executionArn"])["status"] == "ABORTED"
        # An execution that fails without a failure record (e.g. aborted outside the API).
        d = api.analyse([up["id"]]).json()
        ex = next(e for e in sfn.list_executions(stateMachineArn=sfn_env["MZFORGE_STATE_MACHINE_ARN"])["executions"]
                  if e["name"].startswith(f"test-{d['id']}-"))
        sfn.stop_execution(executionArn=ex["executionArn"], error="Ops", cause="stopped by hand")
        gone = api.client.get(f"/v1/analyses/{d['id']}", headers=api.h()).json()
        assert gone["status"] == "failed" and "aborted" in gone["error"], gone


def test_step_functions_start_lost(sfn_env: dict, postgres) -> None:
    """The analysis row committed, the answer lost (the connection cut by faultproxy at that
    COMMIT): the client gets 503 and no execution was started; the analysis is started when it
    is next read, never left queued, and can be cancelled."""
    from faultproxy import FaultProxy

    sfn = boto3.client("stepfunctions")
    arn = sfn_env["MZFORGE_STATE_MACHINE_ARN"]
    with FaultProxy("127.0.0.1", postgres.port) as proxy:
        env = {**sfn_env, "DATABASE_URL": proxy.url(sfn_env["DATABASE_URL"])}
        with api_client(env) as api:
            up = api.upload(shared("mgf/small.mgf")).json()["id"]
            fired = proxy.cut_at(b"COMMIT", after=b"INSERT INTO analyses", deliver=True)
            r = api.analyse([up])
            assert r.status_code == 503 and "database" in r.json()["detail"], r.text
            assert fired.is_set()
            assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
            proxy.restore()
            [a] = api.client.get("/v1/analyses", headers=api.h()).json()["items"]
            assert a["status"] == "running", a
            [ex] = sfn.list_executions(stateMachineArn=arn)["executions"]
            assert ex["name"].startswith(f"test-{a['id']}-")
            assert api.client.get(f"/v1/analyses/{a['id']}", headers=api.h()).json()["status"] == "running"
            r = api.client.delete(f"/v1/analyses/{a['id']}", headers=api.h())
            assert r.status_code == 200 and r.json()["status"] == "cancelled"
            assert sfn.describe_execution(executionArn=ex["executionArn"])["status"] == "ABORTED"
            assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_database_url_from_the_rds_secret(aws: dict) -> None:
    """In EKS the API gets MZFORGE_DATABASE_SECRET_ARN (the RDS secret), not a DATABASE_URL."""
    from mzforge.api.settings import Settings

    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(
        {"engine": "postgres", "host": "db.internal", "port": 5432, "username": "mzforge_admin",
         "password": "p@ss/word:1", "dbname": "mzforge"}))["ARN"]
    s = Settings.from_env({"MZFORGE_DATABASE_SECRET_ARN": arn})
    assert s.database_url == "postgresql+psycopg://mzforge_admin:p%40ss%2Fword%3A1@db.internal:5432/mzforge"
    from sqlalchemy.engine import make_url

    assert make_url(s.database_url).password == "p@ss/word:1"
    # An explicit DATABASE_URL wins; plain postgresql:// gets the psycopg 3 driver.
    s = Settings.from_env({"MZFORGE_DATABASE_SECRET_ARN": arn, "DATABASE_URL": "postgresql://u@h/d"})
    assert s.database_url == "postgresql+psycopg://u@h/d"
