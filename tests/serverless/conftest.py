"""The serverless stack in one process: moto S3/Lambda/Step Functions + our handlers.

``stack`` mirrors template.yaml: the buckets, the four functions (moto's "simple" Lambda backend
with ``invoke`` patched to call our handlers in-process, see shared/notes/serverless-testing.md),
and the state machine created from ``statemachine/atl06p.asl.json`` with the template's
``DefinitionSubstitutions`` (numbers made small for speed). The synthetic granules of
``tests/conftest.py`` are uploaded to the data bucket, which h5coro then reads through moto.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REGION = "us-west-2"
DATA_BUCKET, DATA_PREFIX = "icesat2sr-data", "ATLAS"
RESULTS_BUCKET = "icesat2sr-results"
STATE_MACHINE = "icesat2sr-atl06p"
FUNCTIONS = ("api", "orchestrator", "worker", "aggregator")
JOB_WRITER_ROLE = "arn:aws:iam::123456789012:role/icesat2sr-job-writer"  # the worker's writes (template.yaml)
# DefinitionSubstitutions for the tests (template.yaml has the deployed values)
TEST_SUBSTITUTIONS = {"MaxConcurrency": "4", "ToleratedFailurePercentage": "10.0", "WorkerTaskTimeoutSeconds": "20",
                      "WorkerMaxRetries": "2", "RetryIntervalSeconds": "1"}


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


_LOADING = threading.Lock()


def load_function(name: str):
    """``functions/<name>/app.py`` as module ``fn_<name>`` (they are all called ``app``).

    The Distributed Map calls handlers from several threads: loading is serialised so no thread
    sees a module that another is still executing.
    """
    module_name = f"fn_{name}"
    with _LOADING:
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[module_name] = module
        return sys.modules[module_name]


def render_definition(text: str, values: dict[str, str]) -> str:
    """What SAM's DefinitionSubstitutions do: replace ``${Name}`` for the names given."""
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], m[0]), text)


@dataclass
class Context:
    """A Lambda context as powertools reads it."""

    function_name: str = "test"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Stack:
    s3: object
    sfn: object
    state_machine_arn: str
    calls: list = field(default_factory=list)          # (function, event) of every invocation
    hooks: dict = field(default_factory=dict)          # function -> callable(event, attempt) run before it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempts(self, function: str, granule: str | None = None) -> int:
        with self.lock:
            return sum(1 for f, e in self.calls if f == function and (granule is None or e.get("granule") == granule))

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            d = self.sfn.describe_execution(executionArn=execution_arn)
            if d["status"] != "RUNNING":
                return d
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still running after {timeout} s")
            time.sleep(0.05)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def granules(synth_dir, synth_names) -> dict[str, bytes]:
    """The synthetic ATL03 (and ATL08) files' bytes by name."""
    return {p.name: p.read_bytes() for p in sorted(synth_dir.glob("ATL0*.h5"))}


@pytest.fixture
def aws_env(monkeypatch):
    env = {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "RESULTS_BUCKET": RESULTS_BUCKET, "ORCHESTRATOR_FUNCTION": "orchestrator",
           "STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:123456789012:stateMachine:{STATE_MACHINE}",
           "ICESAT2SR_DEFAULT_ASSET": "atlas-s3", "ICESAT2SR_ATLAS_S3": f"{DATA_BUCKET}/{DATA_PREFIX}",
           "WORKER_MEMORY_MB": "2048", "POWERTOOLS_SERVICE_NAME": "icesat2sr-test",
           "JOB_WRITER_ROLE_ARN": JOB_WRITER_ROLE}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    return env


@pytest.fixture
def stack(aws_env, granules, monkeypatch, request):
    """Everything of template.yaml, mocked; yields a :class:`Stack`."""
    import boto3
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from icesat2sr.granules.s3driver import RetryingS3Driver
    from icesat2sr.service.jobs import store, worker

    monkeypatch.setattr(RetryingS3Driver, "base_s", 0.001)
    monkeypatch.setattr(RetryingS3Driver, "max_s", 0.01)
    worker._REQUESTS.clear()
    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    with mock_aws(config=config):
        store._clients.clear()  # fresh boto3 clients inside this mock
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (DATA_BUCKET, RESULTS_BUCKET):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for name, data in granules.items():
            s3.put_object(Bucket=DATA_BUCKET, Key=f"{DATA_PREFIX}/{name}", Body=data)
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="icesat2sr-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        iam.create_role(RoleName=JOB_WRITER_ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument="{}")
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as z:
            z.writestr("app.py", "def handler(event, context):\n    return event\n")
        lam = boto3.client("lambda", region_name=REGION)
        arns = {name: lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                                          Code={"ZipFile": zipped.getvalue()})["FunctionArn"]
                for name in FUNCTIONS}
        sfn = boto3.client("stepfunctions", region_name=REGION)
        values = {**TEST_SUBSTITUTIONS, **getattr(request, "param", {}), "ResultsBucket": RESULTS_BUCKET,
                  "OrchestratorArn": arns["orchestrator"], "WorkerArn": arns["worker"],
                  "AggregatorArn": arns["aggregator"]}
        definition = render_definition((ROOT / "statemachine" / "atl06p.asl.json").read_text(), values)
        sm = sfn.create_state_machine(name=STATE_MACHINE, definition=definition, roleArn=role)["stateMachineArn"]
        st = Stack(s3=s3, sfn=sfn, state_machine_arn=sm)

        def fake_invoke(self, function_name, qualifier, body, headers, response_headers):
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            event = json.loads(body or "{}")
            with st.lock:
                st.calls.append((name, event))
                attempt = sum(1 for f, e in st.calls if f == name and e == event)
            try:
                hook = st.hooks.get(name)
                if hook is not None:
                    hook(event, attempt)
                result = load_function(name).handler(event, Context(function_name=name))
                return json.dumps(result).encode()
            except Exception as exc:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", fake_invoke)
        yield st
