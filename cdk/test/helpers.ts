import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { AssetPaths, EnvName, envConfig } from '../lib/config';
import { MzforgeStage } from '../lib/stage';

/**
 * Placeholder build outputs: a `bootstrap` file standing in for the cargo-lambda zip and a minimal
 * Dockerfile standing in for the batch-runner image (synth hashes them, never builds them).
 */
export function placeholderAssets(): AssetPaths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mzforge-cdk-test-'));
  const lambda = path.join(root, 'mzforge-lambda');
  const image = path.join(root, 'batch-runner');
  fs.mkdirSync(lambda);
  fs.mkdirSync(image);
  fs.writeFileSync(path.join(lambda, 'bootstrap'), '#!/bin/sh\necho placeholder >&2\nexit 1\n', { mode: 0o755 });
  fs.writeFileSync(path.join(image, 'Dockerfile'), 'FROM public.ecr.aws/amazonlinux/amazonlinux:2023\n');
  return { lambdaCode: lambda, batchImageDirectory: image, batchImageDockerfile: 'Dockerfile' };
}

/** The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'));
  return cdkJson.context;
}

const stages = new Map<EnvName, MzforgeStage>();

/** One synthesized stage per environment, shared by the tests of a file. */
export function stageFor(env: EnvName): MzforgeStage {
  let stage = stages.get(env);
  if (!stage) {
    const app = new App({ context: cdkJsonContext() });
    stage = new MzforgeStage(app, env === 'dev' ? 'Dev' : 'Prod', { config: envConfig(env), assets: placeholderAssets() });
    stages.set(env, stage);
  }
  return stage;
}
