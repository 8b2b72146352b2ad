/**
 * The contract between the infrastructure and the engine's cloud runner (batch-runner/): what the
 * runner reads from its environment and command line, which exit codes and error names it uses
 * for retryable failures, which S3 calls it makes. Where the runner's sources are present, the
 * expectations are read from them, so that a change on either side that breaks the other fails
 * here rather than on the first real deployment.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { ENVIRONMENTS, EnvName, bucketNames } from '../lib/config';
import { API_LIVENESS_PATH, apiManifests } from '../lib/constructs/analysis-api';
import { BATCH_IMAGE_ARCH, RETRYABLE_EXIT_CODE } from '../lib/constructs/batch-compute';
import { HEALTH_PATH } from '../lib/constructs/front-end';
import { TOO_LARGE_FOR_LAMBDA, TRANSIENT_LAMBDA_ERRORS } from '../lib/constructs/processing';
import { RESULT_OBJECTS } from '../lib/grants';
import { CfnResourceJson, resourcesOf, stageFor, stateMachineDefinition, templatesFor } from './helpers';

const repo = path.join(__dirname, '..', '..');
/** A file of the runner (the same repository: its absence is a failure, not a skip). */
const runnerSource = (file: string): string => fs.readFileSync(path.join(repo, 'batch-runner', file), 'utf8');
const errorRs = runnerSource('src/error.rs');

/** `FailureKind::X => 75` / `FailureKind::X => "Mzforge.Y"` arms of batch-runner/src/error.rs. */
function failureArms(source: string, fn: 'exit_code' | 'error_name'): Record<string, string> {
  const body = source.slice(source.indexOf(`pub fn ${fn}`));
  const block = body.slice(0, body.indexOf('\n    }\n'));
  const arms: Record<string, string> = {};
  for (const m of block.matchAll(/((?:FailureKind::\w+\s*\|\s*)*FailureKind::\w+)\s*=>\s*("?[\w.]+"?)/g)) {
    for (const kind of m[1].split('|')) arms[kind.trim().replace('FailureKind::', '')] = m[2].replace(/"/g, '');
  }
  return arms;
}

const envs: EnvName[] = ['dev', 'prod'];
const templates = { dev: templatesFor('dev').stateless, prod: templatesFor('prod').stateless };

function jobDefinition(env: EnvName): Record<string, any> {
  const [[, jd]] = resourcesOf(templates[env], 'AWS::Batch::JobDefinition');
  return jd.Properties!;
}

function statementsOfRole(env: EnvName, roleId: string): any[] {
  return resourcesOf(templates[env], 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties!.Roles as any[]).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement);
}

function engineRole(env: EnvName, step: string): string {
  const [, fn] = resourcesOf(templates[env], 'AWS::Lambda::Function').find(
    ([, f]) => f.Properties!.Environment?.Variables?.MZFORGE_STEP === step,
  ) as [string, CfnResourceJson];
  return fn.Properties!.Role['Fn::GetAtt'][0];
}

function deletes(statements: any[]): string[] {
  return statements.filter((s) => [s.Action].flat().includes('s3:DeleteObject')).flatMap((s) => [s.Resource].flat());
}

describe('Batch job: what `mzforge batch` reads', () => {
  test.each(envs)('%s: AWS_REGION is set (object_store signs for us-east-1 without it; ECS on EC2 sets none)', (env) => {
    const vars = Object.fromEntries(jobDefinition(env).ContainerProperties.Environment.map((e: any) => [e.Name, e.Value]));
    expect(vars.AWS_REGION).toBe(ENVIRONMENTS[env].region);
    expect(vars.AWS_DEFAULT_REGION).toBe(ENVIRONMENTS[env].region);
  });

  test.each(envs)('%s: the manifest location comes from MZFORGE_RESULTS_BUCKET (job) and MZFORGE_MANIFEST_KEY (state)', (env) => {
    const vars = Object.fromEntries(jobDefinition(env).ContainerProperties.Environment.map((e: any) => [e.Name, e.Value]));
    expect(vars.MZFORGE_RESULTS_BUCKET).toBe(bucketNames(ENVIRONMENTS[env]).results);
    const states = stateMachineDefinition(templates[env]).States;
    for (const name of ['AnalyzeInBatchArray', 'AnalyzeInBatch']) {
      expect(states[name].Parameters.ContainerOverrides.Environment).toContainEqual({ Name: 'MZFORGE_MANIFEST_KEY', 'Value.$': '$.manifestKey' });
    }
  });

  test.each(envs)('%s: `mzforge batch --threads <job vCPUs>` (a job sees every core of its host, not its own vCPUs)', (env) => {
    const props = jobDefinition(env).ContainerProperties;
    const vcpus = props.ResourceRequirements.find((r: any) => r.Type === 'VCPU').Value;
    expect(vcpus).toBe(String(ENVIRONMENTS[env].batch.jobVcpus));
    expect(props.Command).toEqual(['batch', '--threads', vcpus]);
  });

  test('the runner has a --threads option on `mzforge batch`, and the image runs `mzforge`', () => {
    expect(runnerSource('src/batch.rs')).toMatch(/pub threads: Option<usize>/);
    expect(runnerSource('Dockerfile')).toMatch(/ENTRYPOINT \["\/usr\/local\/bin\/mzforge"\]/);
  });
});

describe('retries: exactly what the runner calls retryable', () => {
  test('the job definition retries the runner\'s transient exit code and no permanent one', () => {
    const codes = failureArms(errorRs, 'exit_code');
    expect(codes.Transient).toBe(String(RETRYABLE_EXIT_CODE));
    const permanent = Object.entries(codes).filter(([kind]) => kind !== 'Transient').map(([, code]) => code);
    expect(permanent.length).toBeGreaterThanOrEqual(4);
    for (const env of envs) {
      const rules: any[] = jobDefinition(env).RetryStrategy.EvaluateOnExit;
      const retried = rules.filter((r) => r.Action === 'RETRY' && r.OnExitCode !== undefined).map((r) => r.OnExitCode);
      expect(retried).toEqual([codes.Transient]);
      for (const code of permanent) expect(retried).not.toContain(code);
      // Any other exit code (permanent, usage error 2, OOM kill 137) ends the job: the catch-all EXIT is last.
      expect(rules[rules.length - 1]).toEqual({ Action: 'EXIT', OnExitCode: '*' });
    }
  });

  test('every Lambda task retries the runner\'s transient error name and no permanent one', () => {
    const names = failureArms(errorRs, 'error_name');
    expect(TRANSIENT_LAMBDA_ERRORS).toContain(names.Transient);
    const permanent = Object.entries(names).filter(([kind]) => kind !== 'Transient').map(([, name]) => name);
    const states = stateMachineDefinition(templates.dev).States;
    for (const task of [states.Preprocess, states.Postprocess, states.RecordFailure, states.AnalyzeEachInput.ItemProcessor.States.AnalyzeInLambda]) {
      const retried = task.Retry.flatMap((r: any) => r.ErrorEquals);
      expect(retried).toContain(names.Transient);
      for (const name of [...permanent, 'States.ALL', 'States.TaskFailed']) expect(retried).not.toContain(name);
    }
  });

  test('the Lambda route falls back to Batch on the error analyze raises for an input too slow for it', () => {
    expect(failureArms(errorRs, 'error_name').TooLarge).toBe(TOO_LARGE_FOR_LAMBDA);
  });
});

describe('IAM: the S3 calls the runner makes', () => {
  test.each(envs)('%s: analyze and the Batch job may delete a stale result, inside result prefixes only', (env) => {
    const results = bucketNames(ENVIRONMENTS[env]).results;
    const [[, jd]] = resourcesOf(templates[env], 'AWS::Batch::JobDefinition');
    const jobRole = jd.Properties!.ContainerProperties.JobRoleArn['Fn::GetAtt'][0];
    const expected = [`arn:aws:s3:::${results}/${RESULT_OBJECTS}`];
    expect(RESULT_OBJECTS).toBe('analyses/*/results/*');
    expect(deletes(statementsOfRole(env, jobRole))).toEqual(expected);
    expect(deletes(statementsOfRole(env, engineRole(env, 'analyze')))).toEqual(expected);
    for (const step of ['preprocess', 'postprocess', 'record-failure']) {
      expect({ step, deletes: deletes(statementsOfRole(env, engineRole(env, step))) }).toEqual({ step, deletes: [] });
    }
  });

  test('the runner deletes old result objects under <output>/<stem>/ only, output being analyses/<id>/results', () => {
    expect(runnerSource('src/analysis.rs')).toContain('format!("analyses/{analysis_id}/results")');
    expect(runnerSource('src/remote.rs')).toMatch(/storage\.delete\(bucket, &manifest_key\)/);
  });
});

describe('images and packages: the architectures the build produces', () => {
  test('the Batch image asset is built for linux/arm64 with TARGETARCH=arm64, which the Dockerfile copies by', () => {
    const assembly = stageFor('dev').synth();
    const manifests = assembly.artifacts.filter((a): a is cxapi.AssetManifestArtifact => a instanceof cxapi.AssetManifestArtifact);
    const images = manifests.flatMap((m) => Object.values(JSON.parse(fs.readFileSync(m.file, 'utf8')).dockerImages ?? {})) as any[];
    expect(images).toHaveLength(1);
    expect(images[0].source.platform).toBe('linux/arm64');
    expect(images[0].source.dockerBuildArgs).toEqual({ TARGETARCH: BATCH_IMAGE_ARCH });
    const dockerfile = runnerSource('Dockerfile');
    expect(dockerfile).toContain('COPY dist/linux-${TARGETARCH}/mzforge');
  });
});

describe('analysis API pods', () => {
  const container = apiManifests({ image: 'x', minReplicas: 1, maxReplicas: 2, targetCpuPercent: 50, env: {} })[0].spec.template.spec.containers[0];

  test('liveness asks /healthz (the process), readiness /readyz (database and buckets)', () => {
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect([API_LIVENESS_PATH, HEALTH_PATH]).toEqual(['/healthz', '/readyz']);
    const app = path.join(repo, 'python', 'python', 'mzforge', 'api', 'app.py');
    if (fs.existsSync(app)) {
      const source = fs.readFileSync(app, 'utf8');
      expect(source).toContain('@app.get("/healthz"');
      expect(source).toContain('@app.get("/readyz"');
    }
  });
});
