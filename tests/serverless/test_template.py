"""template.yaml: least privilege on the rendered template, and the state machine's substitutions.

The SAM transform runs offline in .venv-tools (``make setup-tools``; ``make test`` does it), so the
policy templates (S3ReadPolicy, StepFunctionsExecutionPolicy) are checked as they expand.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from .conftest import ROOT, TEST_SUBSTITUTIONS

TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
# The one statement that may name Resource "*": X-Ray's writes (Tracing: Active) support no
# resource-level permissions. Logs are scoped to each function's own log group.
XRAY_WRITES = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.fixture(scope="module")
def rendered() -> dict:
    if not TOOLS_PYTHON.exists():
        pytest.fail("run `make setup-tools` first (.venv-tools renders the SAM template)")
    out = subprocess.run([str(TOOLS_PYTHON), str(ROOT / "tools" / "render_template.py"), str(ROOT / "template.yaml")],
                         capture_output=True, text=True, check=True, env={"AWS_DEFAULT_REGION": "us-west-2",
                                                                          "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def statements(node) -> list[dict]:
    """Every IAM statement under a node (both branches of Fn::If included)."""
    found = []
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            found.append(node)
        for value in node.values():
            found += statements(value)
    elif isinstance(node, list):
        for value in node:
            found += statements(value)
    return found


def resource_strings(resource) -> list[str]:
    """Resource patterns as text (Fn::Sub templates; Ref/GetAtt name one resource)."""
    if isinstance(resource, str):
        return [resource]
    if isinstance(resource, list):
        return [s for r in resource for s in resource_strings(r)]
    if isinstance(resource, dict):
        if "Fn::Sub" in resource:
            sub = resource["Fn::Sub"]
            return [sub if isinstance(sub, str) else sub[0]]
        if "Ref" in resource or "Fn::GetAtt" in resource:
            return [f"<{json.dumps(resource)}>"]
        if "Fn::If" in resource:
            return resource_strings(resource["Fn::If"][1:])
    raise AssertionError(f"unexpected resource form {resource!r}")


def wildcard_problem(action_or_resource: str, kind: str) -> str | None:
    """Why a pattern is too wide, or None. A '*' may only end an ARN under a named bucket/prefix,
    state machine or execution; never stand for a whole service, account, bucket or action."""
    if kind == "action":
        return "wildcard action" if "*" in action_or_resource else None
    text = action_or_resource
    if text.strip() == "*":
        return "Resource '*'"
    if "*" not in text:
        return None
    if text.count("*") > 1 or not text.endswith("*"):
        return "wildcard inside the ARN"
    head = re.sub(r"\$\{[^}]+\}", "V", text[:-1])  # ${AWS::Partition}, ${ResultsBucket}: named values
    if not head.endswith(("/", ":")):
        return "partial-name wildcard"
    parts = head.split(":")
    if len(parts) < 6 or any(p in ("", "*") for p in parts[:2]):
        return "not a full ARN"
    if parts[2] == "s3":  # arn:aws:s3:::bucket/...  -> the bucket must be named
        bucket = parts[5].split("/")[0]
        return None if bucket and "*" not in bucket else "unnamed bucket"
    return None if parts[5] else "unnamed resource"


def test_no_wildcard_actions_or_resources(rendered):
    roles = {n: r for n, r in rendered["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert {"ApiRole", "OrchestratorRole", "WorkerRole", "AggregatorRole", "Atl06pStateMachineRole"} <= set(roles)
    functions = [r for r in rendered["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 4 and all("Fn::GetAtt" in f["Properties"]["Role"] for f in functions)
    problems = []
    for name, role in roles.items():
        props = role["Properties"]
        problems += [f"{name}: managed policy {arn}" for arn in props.get("ManagedPolicyArns", [])]
        for st in statements(props.get("Policies", [])):
            assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st, st
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            for action in actions:
                if why := wildcard_problem(action, "action"):
                    problems.append(f"{name}: {action}: {why}")
            for res in resource_strings(st["Resource"]):
                if res == "*" and set(actions) <= XRAY_WRITES:
                    continue
                if why := wildcard_problem(res, "resource"):
                    problems.append(f"{name}: {res}: {why}")
    assert not problems, "\n".join(problems)


def test_functions_log_only_to_their_own_group(rendered):
    resources = rendered["Resources"]
    for role in ("ApiRole", "OrchestratorRole", "WorkerRole", "AggregatorRole"):
        logs = [st for st in statements(resources[role]["Properties"]["Policies"])
                if any(a.startswith("logs:") for a in st["Action"])]
        assert len(logs) == 1 and logs[0]["Resource"] == {"Fn::GetAtt": [role.replace("Role", "Logs"), "Arn"]}


@pytest.mark.parametrize("pattern, bad", [
    ("*", True), ("s3:*", True), ("arn:${AWS::Partition}:s3:::*", True),
    ("arn:${AWS::Partition}:s3:::${ResultsBucket}/*", False), ("arn:aws:s3:::bucket*", True),
    ("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-atl06p:*", False),
    ("arn:aws:lambda:*:123:function:x", True),
])
def test_wildcard_rule_itself(pattern, bad):
    kind = "action" if ":" in pattern and not pattern.startswith("arn") and pattern != "*" else "resource"
    problem = wildcard_problem(pattern, kind)
    assert (problem is not None) == bad, problem


def test_writes_only_under_the_results_prefix(rendered):
    for name, res in rendered["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for st in statements(res["Properties"].get("Policies", [])):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if any(a.startswith("s3:") and a.split(":")[1].startswith(("Put", "Delete", "Abort")) for a in actions):
                assert all(r.endswith("${ResultsBucket}/results/*") for r in resource_strings(st["Resource"])), \
                    (name, st)
    data_reads = [st for res in rendered["Resources"].values() if res["Type"] == "AWS::IAM::Role"
                  for st in statements(res["Properties"].get("Policies", []))
                  if "DataBucket" in json.dumps(st["Resource"])]
    assert data_reads and all(not any(a.startswith(("s3:Put", "s3:Delete")) for a in st["Action"]) for st in data_reads)


def test_state_machine_substitutions_match_the_template():
    text = (ROOT / "statemachine" / "atl06p.asl.json").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    template = (ROOT / "template.yaml").read_text()
    block = template.split("DefinitionSubstitutions:")[1].split("Policies:")[0]
    declared = set(re.findall(r"^\s+(\w+):", block, re.M))
    assert placeholders == declared
    assert set(TEST_SUBSTITUTIONS) <= placeholders
    assert '"ToleratedFailurePercentage": ${ToleratedFailurePercentage}' in text
    assert '"10.0"' in template  # moto's grammar (and ours) want a decimal point


# ---------------------------------------------------------------------- the stack is its owner's (issue 10)
SECURED = {"Fn::If": ["UseApiKey", [{"api_key": []}], [{"sigv4": []}]]}


def test_every_route_requires_sigv4_or_an_api_key(rendered):
    template = rendered["Resources"]
    assert rendered["Parameters"]["ApiAuth"]["Default"] == "AWS_IAM"
    assert rendered["Conditions"]["UseApiKey"] == {"Fn::Equals": [{"Ref": "ApiAuth"}, "API_KEY"]}
    body = template["Icesat2srApi"]["Properties"]["Body"]
    assert body["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert body["securityDefinitions"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    events = template["ApiFunction"]["Properties"].get("Events") or {}
    methods = [(path, method, op) for path, ops in body["paths"].items() for method, op in ops.items()]
    assert len(methods) == 18 and not events   # the 18 routes of ApiFunction, all merged into the body
    for path, method, op in methods:
        assert "x-amazon-apigateway-integration" in op, (path, method)
        assert op["security"] == SECURED, (path, method)
    for name in ("ApiKey", "ApiUsagePlan", "ApiUsagePlanKey"):
        assert template[name]["Condition"] == "UseApiKey"


def test_stage_and_usage_plan_throttling(rendered):
    template = rendered["Resources"]
    stage = template["Icesat2srApiprodStage"]["Properties"]
    assert stage["MethodSettings"] == [{"ResourcePath": "/*", "HttpMethod": "*",
                                        "ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
                                        "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}}]
    assert template["ApiUsagePlan"]["Properties"]["Throttle"] == {"RateLimit": {"Ref": "ApiRateLimit"},
                                                                  "BurstLimit": {"Ref": "ApiBurstLimit"}}
    assert 0 < rendered["Parameters"]["ApiRateLimit"]["Default"] <= 100


def test_reserved_worker_concurrency_and_the_per_job_granule_cap(rendered):
    template, params = rendered["Resources"], rendered["Parameters"]
    worker = template["WorkerFunction"]["Properties"]
    assert worker["ReservedConcurrentExecutions"] == {"Ref": "WorkerReservedConcurrency"}
    assert params["MaxResources"]["Default"] == 300
    for name in ("ApiFunction", "OrchestratorFunction", "WorkerFunction", "AggregatorFunction"):
        assert template[name]["Properties"]["Environment"]["Variables"]["MAX_RESOURCES"] == {"Ref": "MaxResources"}


def test_the_results_bucket_refuses_plain_http(rendered):
    policy = rendered["Resources"]["ResultsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ResultsBucket"}
    [deny] = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [{"Fn::GetAtt": ["ResultsBucket", "Arn"]}, {"Fn::Sub": "${ResultsBucket.Arn}/*"}]


def test_the_worker_writes_only_through_the_job_writer_role(rendered):
    template = rendered["Resources"]
    worker_statements = statements(template["WorkerRole"]["Properties"]["Policies"])
    worker_statements += statements(template["WorkerAssumesJobWriter"]["Properties"]["PolicyDocument"])
    for st in worker_statements:   # no write and no listing of results with the worker's own role
        assert "ResultsBucket" not in json.dumps(st["Resource"]), st
    [assume] = [st for st in worker_statements if "sts:AssumeRole" in st["Action"]]
    assert assume["Action"] == ["sts:AssumeRole"] and assume["Resource"] == {"Fn::GetAtt": ["JobWriterRole", "Arn"]}
    assert template["WorkerAssumesJobWriter"]["Properties"]["Roles"] == [{"Ref": "WorkerRole"}]
    writer = template["JobWriterRole"]["Properties"]
    [trust] = writer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": ["WorkerRole", "Arn"]}}
    [results] = statements(writer["Policies"])
    assert set(results["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject",   # no ListBucket
                                      "s3:AbortMultipartUpload"}   # a streamed result that is dropped
    env = template["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JOB_WRITER_ROLE_ARN"] == {"Fn::GetAtt": ["JobWriterRole", "Arn"]}


def test_presigned_result_urls_are_short_lived(rendered):
    env = rendered["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["RESULT_URL_EXPIRY_S"] == {"Ref": "ResultUrlExpiry"}
    assert rendered["Parameters"]["ResultUrlExpiry"]["Default"] <= 900


def test_job_ids_carry_at_least_122_random_bits():
    from icesat2sr.service import jobs

    ids = [jobs.new_job_id("atl06") for _ in range(2000)]
    tails = [i.rsplit("-", 1)[1] for i in ids]
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tails)   # 32 hex digits = 128 bits
    assert len(set(tails)) == len(tails)
    # every bit position varies (a fixed or time-derived part would not)
    bits = [int(t, 16) for t in tails]
    assert all(0 < sum((b >> k) & 1 for b in bits) < len(bits) for k in range(128))
    assert all(len(i) <= 80 and jobs.check_job_id(i) for i in ids)
