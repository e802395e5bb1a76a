"""Print a state machine definition with template.yaml's DefinitionSubstitutions filled in.

What SAM does at deploy time, with each parameter's default and a well-formed ARN for each
``!GetAtt Function.Arn`` / ``!Ref Bucket``, so ``asl-validator`` checks the file that deploys
(its numbers are placeholders until then). Usage (from the repository root):
``python tools/asl/render.py template.yaml statemachine/atl06p.asl.json``
"""

from __future__ import annotations

import re
import sys

import yaml

ACCOUNT, REGION = "123456789012", "us-west-2"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags kept as ``{"Tag": value}``."""


def _tag(loader, suffix, node):
    value = (loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
             else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
             else loader.construct_mapping(node))
    return {suffix: value}


_Loader.add_multi_constructor("!", _tag)


def substitutions(template: dict) -> dict[str, str]:
    """The state machine's DefinitionSubstitutions, resolved to sample deploy-time values."""
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine"]
    out = {}
    for key, value in machines[0]["Properties"]["DefinitionSubstitutions"].items():
        if isinstance(value, dict) and "GetAtt" in value:
            name = value["GetAtt"].split(".")[0] if isinstance(value["GetAtt"], str) else value["GetAtt"][0]
            out[key] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        elif isinstance(value, dict) and "Ref" in value:
            out[key] = params.get(value["Ref"], f"{value['Ref'].lower()}-sample")
        else:
            out[key] = str(value)
    return out


def render(template_path: str, definition_path: str) -> str:
    """The definition at ``definition_path`` with the substitutions of ``template_path`` filled in."""
    with open(template_path) as f:
        values = substitutions(yaml.load(f, Loader=_Loader))
    with open(definition_path) as f:
        text = f.read()
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - set(values))
    if missing:
        raise SystemExit(f"{definition_path}: no DefinitionSubstitutions for {', '.join(missing)}")
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], text)


if __name__ == "__main__":
    sys.stdout.write(render(*sys.argv[1:3]))
