"""Print template.yaml as CloudFormation JSON after the SAM transform, offline.

Runs in ``.venv-tools`` (it needs aws-sam-translator). Local code paths are replaced by fake S3
locations, as ``sam validate`` does, so the translator accepts them; nothing is uploaded or
called. The tests read the IAM policies of the result (SAM policy templates expanded).

Usage: ``.venv-tools/bin/python tools/render_template.py [template.yaml]``
"""

from __future__ import annotations

import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

_LOCAL = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri",
          "AWS::Serverless::StateMachine": "DefinitionUri"}


def render(path: str) -> dict:
    """The template at ``path`` after the SAM transform (local code paths faked as S3 URIs)."""
    with open(path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        prop = _LOCAL.get(resource.get("Type"))
        if prop and isinstance(resource.get("Properties", {}).get(prop), str):
            resource["Properties"][prop] = "s3://render-only/" + resource["Properties"][prop].strip("/")
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), plugins=[])
    return translator.translate(sam_template=template, parameter_values={}, get_managed_policy_map=lambda: {})


if __name__ == "__main__":
    json.dump(render(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"), sys.stdout, indent=1, default=str)
