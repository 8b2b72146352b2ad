#!/usr/bin/env bash
# cfn-lint on every synthesized template (run `npm run synth` first).
# Uses cdk/.venv/bin/cfn-lint when present (ci.sh creates it), else cfn-lint on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
CFN_LINT=.venv/bin/cfn-lint
if [ ! -x "$CFN_LINT" ]; then
  CFN_LINT=$(command -v cfn-lint || true)
fi
if [ -z "$CFN_LINT" ]; then
  echo "lint:cfn: cfn-lint not found; run 'bash ci.sh' or: python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
  exit 1
fi
mapfile -t templates < <(find cdk.out -name '*.template.json' | sort)
if [ "${#templates[@]}" -eq 0 ]; then
  echo "lint:cfn: no templates under cdk.out; run 'npm run synth' first" >&2
  exit 1
fi
echo "lint:cfn: $("$CFN_LINT" --version) on ${#templates[@]} template(s)"
# Errors fail the build. Warnings are printed, except W3005 (aws-cdk-lib adds DependsOn next to
# a GetAtt on the same resource: redundant, harmless); informational findings are not.
"$CFN_LINT" --format parseable --regions eu-west-1 --ignore-checks I W3005 -- "${templates[@]}" && status=0 || status=$?
# cfn-lint exit codes are a bitmask: 2 = error, 4 = warning, 8 = informational.
if (( status & 2 )) || (( status & 1 )); then
  echo "lint:cfn: errors found" >&2
  exit 1
fi
echo "lint:cfn: no errors"
