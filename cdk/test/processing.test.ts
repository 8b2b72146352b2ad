import * as fs from 'fs';
import * as path from 'path';
import { Match } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS, bucketNames } from '../lib/config';
import { ENGINE_STEPS, REQUEST_PREFIX, TOO_LARGE_FOR_LAMBDA, TRANSIENT_BATCH_ERRORS, TRANSIENT_LAMBDA_ERRORS } from '../lib/constructs/processing';
import { resourcesOf, stateMachineDefinition, templatesFor } from './helpers';

const dev = templatesFor('dev').stateless;
const prod = templatesFor('prod').stateless;
const definition = stateMachineDefinition(dev);
const states: Record<string, any> = definition.States;

describe('engine Lambdas', () => {
  const engine = resourcesOf(dev, 'AWS::Lambda::Function').filter(([, f]) => f.Properties!.Runtime === 'provided.al2023');

  test('one mzforge-lambda function per step: arm64, provided.al2023, bootstrap handler, in the VPC', () => {
    expect(engine.map(([, f]) => f.Properties!.Environment.Variables.MZFORGE_STEP).sort()).toEqual(Object.keys(ENGINE_STEPS).sort());
    for (const [, f] of engine) {
      const p = f.Properties!;
      expect(p.Architectures).toEqual(['arm64']);
      expect(p.Handler).toBe('bootstrap');
      expect(p.VpcConfig.SubnetIds.length).toBeGreaterThanOrEqual(2);
      expect(p.TracingConfig).toEqual({ Mode: 'Active' });
      expect(p.MemorySize).toBe(ENVIRONMENTS.dev.lambda.memoryMiB);
    }
  });

  test('each function has its own role and its own log group', () => {
    const roles = new Set(engine.map(([, f]) => JSON.stringify(f.Properties!.Role)));
    expect(roles.size).toBe(engine.length);
    const logGroups = new Set(engine.map(([, f]) => JSON.stringify(f.Properties!.LoggingConfig.LogGroup)));
    expect(logGroups.size).toBe(engine.length);
  });

  test('no engine function gets the database secret (the runner never reads one; the API reconciles status from S3)', () => {
    const withSecret = engine.filter(([, f]) => f.Properties!.Environment.Variables.MZFORGE_DATABASE_SECRET_ARN !== undefined);
    expect(withSecret).toEqual([]);
    const roles = new Set(engine.map(([, f]) => f.Properties!.Role['Fn::GetAtt'][0]));
    const secretReads = resourcesOf(dev, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties!.Roles as any[]).some((r) => roles.has(r.Ref)))
      .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement)
      .filter((s: any) => [s.Action].flat().some((a: string) => a.startsWith('secretsmanager:')));
    expect(secretReads).toEqual([]);
  });

  test('record-failure may write failure.json to the results bucket, and read no uploads', () => {
    const [, fn] = engine.find(([, f]) => f.Properties!.Environment.Variables.MZFORGE_STEP === 'record-failure')!;
    const roleId = fn.Properties!.Role['Fn::GetAtt'][0];
    const statements = resourcesOf(dev, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties!.Roles as any[]).some((r) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement);
    const puts = statements.filter((s: any) => [s.Action].flat().includes('s3:PutObject'));
    expect(puts).toHaveLength(1);
    expect(JSON.stringify(puts[0].Resource)).toMatch(/Results/i);
    expect(statements.some((s: any) => [s.Action].flat().includes('s3:GetObject'))).toBe(false);
  });

  test('prod gets more memory and time than dev', () => {
    prod.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      MemorySize: ENVIRONMENTS.prod.lambda.memoryMiB,
      Timeout: ENVIRONMENTS.prod.lambda.timeout.toSeconds(),
    });
  });
});

describe('state machine', () => {
  test('starts with Preprocess (Lambda) and then chooses on $.route', () => {
    expect(definition.StartAt).toBe('Preprocess');
    expect(states.Preprocess.Resource).toMatch(/:states:::lambda:invoke$/);
    expect(states.Preprocess.Next).toBe('RouteBySize');
    const choice = states.RouteBySize;
    expect(choice.Type).toBe('Choice');
    expect(choice.Choices).toEqual([
      { Variable: '$.route', StringEquals: 'lambda', Next: 'AnalyzeEachInput' },
      { Variable: '$.route', StringEquals: 'batch', Next: 'BatchArrayOrSingle' },
    ]);
    expect(choice.Default).toBe('UnknownRoute');
    expect(states.UnknownRoute.Next).toBe('RecordFailure');
  });

  test('the Lambda route maps AnalyzeInLambda over $.inputs, then Postprocess', () => {
    const map = states.AnalyzeEachInput;
    expect(map.Type).toBe('Map');
    expect(map.ItemsPath).toBe('$.inputs');
    expect(map.MaxConcurrency).toBeGreaterThan(0);
    expect(map.ItemProcessor.StartAt).toBe('AnalyzeInLambda');
    const inner = map.ItemProcessor.States.AnalyzeInLambda;
    expect(inner.Resource).toMatch(/:states:::lambda:invoke$/);
    expect(inner.Parameters.FunctionName).toMatch(/Engineanalyze/);
    expect(map.Next).toBe('Postprocess');
  });

  test('a Batch job may use all its attempts, and an array job many waves, before a timeout ends it', () => {
    // Each attempt ends at the job definition's jobTimeout (the task overrode it with one attempt
    // plus an hour), and the execution's timeout holds every attempt of a child (prod's was 24 h
    // against 5 attempts of 6 h).
    for (const [name, t] of [['dev', dev], ['prod', prod]] as const) {
      const c = ENVIRONMENTS[name].batch;
      const def = stateMachineDefinition(t);
      expect(def.TimeoutSeconds).toBe(c.analysisTimeout.toSeconds());
      expect(def.TimeoutSeconds).toBeGreaterThan(c.jobAttempts * c.jobTimeout.toSeconds());
      for (const task of ['AnalyzeInBatchArray', 'AnalyzeInBatch']) {
        expect(def.States[task].Parameters.Timeout).toBeUndefined();
        expect(def.States[task].TimeoutSeconds).toBeUndefined();
      }
      const [[, jd]] = resourcesOf(t, 'AWS::Batch::JobDefinition');
      expect(jd.Properties!.Timeout).toEqual({ AttemptDurationSeconds: c.jobTimeout.toSeconds() });
    }
  });

  test('the Batch route submits a .sync job, as an array job when there are several inputs', () => {
    const choice = states.BatchArrayOrSingle;
    expect(choice.Choices).toEqual([{ Variable: '$.inputCount', NumericGreaterThan: 1, Next: 'AnalyzeInBatchArray' }]);
    expect(choice.Default).toBe('AnalyzeInBatch');
    for (const name of ['AnalyzeInBatchArray', 'AnalyzeInBatch']) {
      expect(states[name].Resource).toMatch(/:states:::batch:submitJob\.sync$/);
      expect(states[name].Next).toBe('Postprocess');
      expect(states[name].Parameters.JobQueue).toBeDefined();
      expect(states[name].Parameters.JobDefinition).toBeDefined();
    }
    expect(states.AnalyzeInBatchArray.Parameters.ArrayProperties).toEqual({ 'Size.$': '$.inputCount' });
    expect(states.AnalyzeInBatch.Parameters.ArrayProperties).toBeUndefined();
  });

  test('Postprocess (Lambda) ends in success', () => {
    expect(states.Postprocess.Parameters.FunctionName).toMatch(/Enginepostprocess/);
    expect(states.Postprocess.Next).toBe('AnalysisSucceeded');
    expect(states.AnalysisSucceeded.Type).toBe('Succeed');
  });

  test('every Lambda task retries transient errors with exponential backoff and jitter', () => {
    const lambdaTasks = [states.Preprocess, states.Postprocess, states.RecordFailure, states.AnalyzeEachInput.ItemProcessor.States.AnalyzeInLambda];
    for (const task of lambdaTasks) {
      expect(task.Retry).toEqual([
        expect.objectContaining({ ErrorEquals: TRANSIENT_LAMBDA_ERRORS, BackoffRate: 2, IntervalSeconds: 2, JitterStrategy: 'FULL' }),
      ]);
      expect(task.Retry[0].MaxAttempts).toBeGreaterThan(1);
      expect(task.Retry[0].ErrorEquals).toContain('Mzforge.Transient');
    }
  });

  test('Batch tasks retry AWS Batch service errors with backoff', () => {
    for (const name of ['AnalyzeInBatchArray', 'AnalyzeInBatch']) {
      expect(states[name].Retry).toEqual([expect.objectContaining({ ErrorEquals: TRANSIENT_BATCH_ERRORS, BackoffRate: 2 })]);
    }
  });

  test('failures are caught, recorded by RecordFailure, and end the execution as failed', () => {
    const recorded = { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordFailure' };
    for (const name of ['Preprocess', 'AnalyzeInBatchArray', 'AnalyzeInBatch', 'Postprocess']) {
      expect(states[name].Catch).toEqual([recorded]);
    }
    // The Map: an input too slow for a Lambda sends the analysis to Batch (it failed the whole
    // analysis); catchers are tried in order, so that one comes first.
    expect(states.AnalyzeEachInput.Catch).toEqual([
      { ErrorEquals: [TOO_LARGE_FOR_LAMBDA], ResultPath: '$.lambdaFallback', Next: 'BatchArrayOrSingle' },
      recorded,
    ]);
    expect(states.RecordFailure.Parameters.FunctionName).toMatch(/Enginerecordfailure/);
    expect(states.RecordFailure.Next).toBe('AnalysisFailed');
    expect(states.AnalysisFailed.Type).toBe('Fail');
  });

  test('states name the payload schemas of batch-runner/schemas', () => {
    expect(states.Preprocess.Comment).toContain(ENGINE_STEPS.preprocess.schema);
    expect(states.Postprocess.Comment).toContain(ENGINE_STEPS.postprocess.schema);
    expect(states.RecordFailure.Comment).toContain(ENGINE_STEPS['record-failure'].schema);
  });

  test('logs all events to a log group with retention, traces with X-Ray', () => {
    dev.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL' }),
    });
  });

  test('the state machine role may invoke exactly the four engine functions and submit Batch jobs', () => {
    const [[, sm]] = resourcesOf(dev, 'AWS::StepFunctions::StateMachine');
    const roleId = sm.Properties!.RoleArn['Fn::GetAtt'][0];
    const policies = resourcesOf(dev, 'AWS::IAM::Policy').filter(([, p]) => p.Properties!.Roles.some((r: any) => r.Ref === roleId));
    const statements = policies.flatMap(([, p]) => p.Properties!.PolicyDocument.Statement);
    const invoke = statements.filter((s: any) => s.Action === 'lambda:InvokeFunction');
    const targets = new Set(invoke.flatMap((s: any) => s.Resource).map((r: any) => JSON.stringify(r['Fn::GetAtt'] ?? r['Fn::Join'][1][0]['Fn::GetAtt'])));
    expect(targets.size).toBe(4);
    expect(statements.some((s: any) => [s.Action].flat().includes('batch:SubmitJob'))).toBe(true);
  });
});

describe('trigger', () => {
  test('a small inline Node function that may only start executions of the state machine', () => {
    const [[triggerId, trigger]] = resourcesOf(dev, 'AWS::Lambda::Function').filter(([, f]) => f.Properties!.Runtime?.startsWith('nodejs'));
    expect(trigger.Properties!.Code.ZipFile).toContain('StartExecutionCommand');
    expect(trigger.Properties!.Environment.Variables.REQUEST_PREFIX).toBe(REQUEST_PREFIX);
    const roleId = trigger.Properties!.Role['Fn::GetAtt'][0];
    const statements = resourcesOf(dev, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties!.Roles.some((r: any) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement);
    const actions = statements.flatMap((s: any) => [s.Action].flat());
    expect(actions.sort()).toEqual(['states:StartExecution', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    const start = statements.find((s: any) => s.Action === 'states:StartExecution');
    expect(start.Resource).toEqual({ Ref: expect.stringMatching(/AnalysisStateMachine/) });
    expect(triggerId).toMatch(/Trigger/);
  });

  test('runs on "Object Created" events for requests/ in the uploads bucket', () => {
    dev.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: {
          bucket: { name: [bucketNames(ENVIRONMENTS.dev).uploads] },
          object: { key: [{ prefix: REQUEST_PREFIX }] },
        },
      },
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 4, MaximumEventAgeInSeconds: 3600 } })],
    });
  });
});

describe('payload schemas', () => {
  // The schemas are written by batch-runner (issue 5); until they exist this check has nothing to read.
  const dir = path.join(__dirname, '..', '..', 'batch-runner', 'schemas');
  const whenPresent = fs.existsSync(dir) ? test : test.skip;
  whenPresent('every schema the state machine names exists in batch-runner/schemas and is JSON', () => {
    for (const { schema } of Object.values(ENGINE_STEPS)) {
      const file = path.join(dir, schema);
      expect({ schema, exists: fs.existsSync(file) }).toEqual({ schema, exists: true });
      expect(() => JSON.parse(fs.readFileSync(file, 'utf8'))).not.toThrow();
    }
  });
});
