#!/usr/bin/env node
// Offline `cdk synth` for CI and local checks.
//
// The real build outputs (the cargo-lambda zip of issue 5 and the batch-runner Dockerfile) may not
// exist yet, so unless MZFORGE_LAMBDA_CODE / MZFORGE_BATCH_IMAGE_DIR point at real ones, this
// writes clearly-labelled placeholders under .placeholder-assets/ and synthesizes against them.
// Synth hashes assets; it never builds the Docker image. Never deploy a placeholder synth.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const placeholders = join(cdkDir, '.placeholder-assets');

function placeholderLambda() {
  const dir = join(placeholders, 'mzforge-lambda');
  mkdirSync(dir, { recursive: true });
  const bootstrap = join(dir, 'bootstrap');
  writeFileSync(bootstrap, '#!/bin/sh\n# PLACEHOLDER for offline cdk synth only: not the mzforge-lambda binary.\nexit 1\n');
  chmodSync(bootstrap, 0o755);
  return dir;
}

function placeholderImage() {
  const dir = join(placeholders, 'batch-runner');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'Dockerfile'),
    '# PLACEHOLDER for offline cdk synth only: not the batch-runner image.\nFROM public.ecr.aws/amazonlinux/amazonlinux:2023\n',
  );
  return dir;
}

const lambdaCode = process.env.MZFORGE_LAMBDA_CODE ?? placeholderLambda();
const imageDir = process.env.MZFORGE_BATCH_IMAGE_DIR ?? placeholderImage();
for (const p of [lambdaCode, join(imageDir, 'Dockerfile')]) {
  if (!existsSync(p)) {
    console.error(`synth: missing ${p}`);
    process.exit(1);
  }
}

// Start from an empty cloud assembly so that lint:cfn never sees templates of an older synth.
rmSync(join(cdkDir, 'cdk.out'), { recursive: true, force: true });

const cdk = join(cdkDir, 'node_modules', '.bin', 'cdk');
const args = ['synth', '--quiet', '-c', `lambdaCode=${lambdaCode}`, '-c', `batchImageDirectory=${imageDir}`, ...process.argv.slice(2)];
const result = spawnSync(cdk, args, {
  cwd: cdkDir,
  stdio: 'inherit',
  env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
});
if (result.status !== 0) {
  process.exit(result.status ?? 1);
}

// `cdk synth` writes the policy-validation report (cdk-nag AwsSolutions, CloudFormation Validate,
// construct annotations) but exits 0 on findings; this is the gate.
const report = JSON.parse(readFileSync(join(cdkDir, 'cdk.out', 'validation-report.json'), 'utf8'));
let findings = 0;
for (const plugin of report.pluginReports ?? []) {
  for (const v of plugin.violations ?? []) {
    for (const c of v.violatingConstructs ?? []) {
      findings += 1;
      console.error(`${plugin.pluginName}: ${v.severity} ${v.ruleName} at ${c.constructPath}: ${v.description}`);
    }
  }
}
if (findings > 0) {
  console.error(`synth: ${findings} unacknowledged validation finding(s); fix them or acknowledge them with a reason`);
  process.exit(1);
}
console.log('synth: validation report clean (cdk-nag AwsSolutions, CloudFormation Validate, annotations)');
