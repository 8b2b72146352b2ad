#!/usr/bin/env node
/**
 * The mzforge CDK app.
 *
 * Context values (all optional):
 *   lambdaCode           cargo-lambda output: bootstrap.zip or a directory with `bootstrap`
 *                        (default ../target/lambda/mzforge-lambda/bootstrap.zip)
 *   batchImageDirectory  Docker build context of the Batch image (default ../batch-runner)
 *   batchImageDockerfile Dockerfile inside that directory (default Dockerfile)
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AssetPaths, PIPELINE } from '../lib/config';
import { PipelineStack } from '../lib/stacks/pipeline-stack';

const app = new App();
const repoRoot = path.resolve(__dirname, '..', '..');
const ctx = (key: string, fallback: string): string => (app.node.tryGetContext(key) as string | undefined) ?? fallback;

const assets: AssetPaths = {
  lambdaCode: path.resolve(ctx('lambdaCode', path.join(repoRoot, 'target/lambda/mzforge-lambda/bootstrap.zip'))),
  batchImageDirectory: path.resolve(ctx('batchImageDirectory', path.join(repoRoot, 'batch-runner'))),
  batchImageDockerfile: ctx('batchImageDockerfile', 'Dockerfile'),
};
for (const [what, p] of [
  ['Lambda package (build it with cargo lambda, or run `npm run synth` for placeholders)', assets.lambdaCode],
  ['Batch image Dockerfile', path.join(assets.batchImageDirectory, assets.batchImageDockerfile)],
] as const) {
  if (!fs.existsSync(p)) {
    throw new Error(`missing ${what}: ${p}`);
  }
}

// The pipeline holds the two environments as stages (deploy one by hand with
// `cdk deploy 'MzforgePipeline/Dev/*'`).
new PipelineStack(app, 'MzforgePipeline', {
  env: { account: PIPELINE.account, region: PIPELINE.region },
  stackName: 'mzforge-pipeline',
  description: 'mzforge CI/CD: build, test, deploy dev then prod',
  pipeline: PIPELINE,
  assets,
});

// cdk-nag AwsSolutions runs as a policy-validation plugin: `cdk synth` fails on any unacknowledged finding.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

app.synth();
