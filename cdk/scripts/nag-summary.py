#!/usr/bin/env python3
"""Summarise cdk.out/validation-report.json: one line per rule and construct path."""
import json, sys
r = json.load(open(sys.argv[1] if len(sys.argv) > 1 else 'cdk.out/validation-report.json'))
n = 0
for p in r.get('pluginReports', []):
    for v in p.get('violations', []):
        for c in v['violatingConstructs']:
            n += 1
            print(f"{v['severity']:7} {v['ruleName']:40} {c['constructPath']}")
print(f"{n} violations", file=sys.stderr)
