import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, AppProps } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AssetPaths, EnvConfig, EnvName, envConfig } from '../lib/config';
import { MzforgeStage } from '../lib/stage';

/**
 * Placeholder build outputs: a `bootstrap` file standing in for the cargo-lambda zip and a minimal
 * Dockerfile standing in for the batch-runner image (synth hashes them, never builds them).
 */
const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export function placeholderAssets(): AssetPaths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mzforge-cdk-test-'));
  tempDirs.push(root);
  const lambda = path.join(root, 'mzforge-lambda');
  const image = path.join(root, 'batch-runner');
  fs.mkdirSync(lambda);
  fs.mkdirSync(image);
  fs.writeFileSync(path.join(lambda, 'bootstrap'), '#!/bin/sh\necho placeholder >&2\nexit 1\n', { mode: 0o755 });
  fs.writeFileSync(path.join(image, 'Dockerfile'), 'FROM public.ecr.aws/amazonlinux/amazonlinux:2023\n');
  return { lambdaCode: lambda, batchImageDirectory: image, batchImageDockerfile: 'Dockerfile' };
}

/**
 * An App that synthesizes into a temporary directory removed after the test file. Without an
 * `outdir`, every App leaves a `cdk.outXXXX` directory of staged assets in the system temp
 * directory (about 58 MB each here, 1 GB per test run), which filled a CI machine's disk.
 */
export function testApp(props: AppProps = {}): App {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mzforge-cdk-out-'));
  tempDirs.push(outdir);
  return new App({ ...props, outdir });
}

/** The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'));
  return cdkJson.context;
}

const stages = new Map<EnvName, MzforgeStage>();

/** One synthesized stage per environment, shared by the tests of a file. */
export function stageFor(env: EnvName, overrides: Partial<EnvConfig> = {}): MzforgeStage {
  if (Object.keys(overrides).length > 0) {
    const app = testApp({ context: cdkJsonContext() });
    return new MzforgeStage(app, 'Custom', { config: { ...envConfig(env), ...overrides }, assets: placeholderAssets() });
  }
  let stage = stages.get(env);
  if (!stage) {
    const app = testApp({ context: cdkJsonContext() });
    stage = new MzforgeStage(app, env === 'dev' ? 'Dev' : 'Prod', { config: envConfig(env), assets: placeholderAssets() });
    stages.set(env, stage);
  }
  return stage;
}

export interface CfnResourceJson {
  Type: string;
  Properties?: Record<string, any>;
  [key: string]: any;
}

/** `[logicalId, resource]` for every resource of `type` in a template. */
export function resourcesOf(t: Template, type: string): [string, CfnResourceJson][] {
  return Object.entries(t.findResources(type)) as [string, CfnResourceJson][];
}

/**
 * Renders an `Fn::Join` of strings and intrinsics to one string, writing each intrinsic as a
 * placeholder (`<Ref:X>`, `<GetAtt:X.Y>`, `<ImportValue>`), so a definition can be JSON-parsed.
 */
export function flattenJoin(value: any): string {
  if (typeof value === 'string') return value;
  if (value && value['Fn::Join']) {
    const [sep, parts] = value['Fn::Join'];
    return parts.map(flattenJoin).join(sep);
  }
  if (value && value.Ref) return `<Ref:${value.Ref}>`;
  if (value && value['Fn::GetAtt']) return `<GetAtt:${value['Fn::GetAtt'].join('.')}>`;
  if (value && value['Fn::ImportValue']) return '<ImportValue>';
  return `<${Object.keys(value ?? {}).join(',')}>`;
}

/** The parsed Amazon States Language definition of the only state machine in `t`. */
export function stateMachineDefinition(t: Template): any {
  const machines = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  return JSON.parse(flattenJoin(machines[0][1].Properties!.DefinitionString));
}

/** Both templates of an environment. */
export function templatesFor(env: EnvName): { stateful: Template; stateless: Template } {
  const stage = stageFor(env);
  return { stateful: Template.fromStack(stage.stateful), stateless: Template.fromStack(stage.stateless) };
}
