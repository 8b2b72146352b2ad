#!/usr/bin/env bash
# Every check of the CDK app, offline apart from the package registries:
#   npm ci (exact versions from package-lock.json), cfn-lint into cdk/.venv if missing,
#   then `npm run ci`: type check, synth (fails on any unacknowledged cdk-nag / CloudFormation
#   validate finding), jest, cfn-lint on the synthesized templates.
# Called by the project's .ci/run as `bash cdk/ci.sh`.
set -euo pipefail
cd "$(dirname "$0")"
export CDK_DISABLE_CLI_TELEMETRY=true
export CI="${CI:-true}"
start=$(date +%s)

npm ci --no-audit --no-fund

if ! .venv/bin/cfn-lint --version >/dev/null 2>&1; then
  rm -rf .venv
  if python3 -m venv .venv 2>/dev/null; then
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  else
    # No venv module (e.g. Debian without python3-venv): fall back to a user install.
    python3 -m pip install --quiet --user -r requirements-dev.txt
  fi
fi

status=0
npm run ci || status=$?

# One plain summary line for the runner ("N passed, N failed"), from jest's JSON results.
if [ -f .jest-results.json ]; then
  node -e 'const r = require("./.jest-results.json"); console.log(`cdk: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""))'
fi
echo "cdk ci: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start ))s"
exit "$status"
