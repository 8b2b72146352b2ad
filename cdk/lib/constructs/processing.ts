import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { AssetPaths, EnvConfig } from '../config';
import { DataBucketRef, grantBucket, grantResultReplacement } from '../grants';
import { BatchCompute } from './batch-compute';

/**
 * Errors worth retrying with backoff. `Mzforge.Transient` is the error type the engine's Lambda
 * raises for throttled or interrupted I/O (see batch-runner); the rest are AWS service errors.
 */
export const TRANSIENT_LAMBDA_ERRORS = [
  'Mzforge.Transient',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];
/** The error analyze raises for an input it cannot finish in a Lambda's time (batch-runner/src/error.rs). */
export const TOO_LARGE_FOR_LAMBDA = 'Mzforge.TooLargeForLambda';
export const TRANSIENT_BATCH_ERRORS = ['Batch.AWSBatchException', 'Batch.ServerException'];

/**
 * The steps of the `mzforge-lambda` binary. Each runs as its own function (own role, own log
 * group) with `MZFORGE_STEP` telling the binary which handler to run. Payloads follow the JSON
 * schemas in `batch-runner/schemas/` (named in each state's comment).
 */
export const ENGINE_STEPS = {
  preprocess: { schema: 'preprocess-output.json' },
  analyze: { schema: 'analyze-output.json' },
  postprocess: { schema: 'postprocess-output.json' },
  'record-failure': { schema: 'failure.json' },
} as const;
export type EngineStep = keyof typeof ENGINE_STEPS;

/** The prefix in the uploads bucket where an analysis request (`<analysisId>.json`) starts a run. */
export const REQUEST_PREFIX = 'requests/';

export interface ProcessingProps {
  readonly config: EnvConfig;
  readonly assets: AssetPaths;
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly uploads: DataBucketRef;
  readonly results: DataBucketRef;
  readonly batch: BatchCompute;
}

/**
 * The analysis workflow: engine Lambdas, the Step Functions state machine that chains them with
 * AWS Batch, and the trigger function that starts an execution per analysis request.
 *
 *   Preprocess -> RouteBySize -(lambda)-> AnalyzeEachInput (Map of AnalyzeInLambda) -> Postprocess
 *                             -(batch)--> BatchArrayOrSingle -> AnalyzeInBatch[Array] (.sync) -> Postprocess
 *   any failure -> RecordFailure -> AnalysisFailed
 */
export class Processing extends Construct {
  public readonly functions: Record<EngineStep, lambda.Function>;
  public readonly stateMachine: sfn.StateMachine;
  public readonly trigger: lambda.Function;
  public readonly stateMachineLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ProcessingProps) {
    super(scope, id);
    const { config } = props;
    const code = lambda.Code.fromAsset(props.assets.lambdaCode);

    const engineFunction = (step: EngineStep): lambda.Function => {
      const name = `Engine-${step}`;
      const logGroup = new logs.LogGroup(this, `${name}-Logs`, {
        retention: config.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const fn = new lambda.Function(this, name, {
        description: `mzforge-lambda ${step} step (${config.envName})`,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        code,
        memorySize: config.lambda.memoryMiB,
        timeout: config.lambda.timeout,
        vpc: props.vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [props.securityGroup],
        logGroup,
        tracing: lambda.Tracing.ACTIVE,
        environment: {
          MZFORGE_STEP: step,
          MZFORGE_ENVIRONMENT: config.envName,
          MZFORGE_UPLOADS_BUCKET: props.uploads.bucketName,
          MZFORGE_RESULTS_BUCKET: props.results.bucketName,
          RUST_LOG: 'info',
        },
      });
      acknowledgeLambdaBasics(fn, true);
      return fn;
    };

    this.functions = {
      preprocess: engineFunction('preprocess'),
      analyze: engineFunction('analyze'),
      postprocess: engineFunction('postprocess'),
      'record-failure': engineFunction('record-failure'),
    };
    const f = this.functions;
    grantBucket(f.preprocess, f.preprocess, props.uploads, 'read');
    grantBucket(f.preprocess, f.preprocess, props.results, 'write');
    grantBucket(f.analyze, f.analyze, props.uploads, 'read');
    grantBucket(f.analyze, f.analyze, props.results, 'readwrite');
    // A result of another version or other parameters is replaced: its manifest.json goes first.
    grantResultReplacement(f.analyze, f.analyze, props.results);
    grantBucket(f.postprocess, f.postprocess, props.results, 'readwrite');
    // record-failure writes analyses/<id>/failure.json, which the analysis API reconciles.
    grantBucket(f['record-failure'], f['record-failure'], props.results, 'write');
    // No engine step reads the database: the analysis API reconciles an analysis' status from
    // summary.json / failure.json, so none gets the database secret.

    // ---- the state machine -------------------------------------------------------------------
    const invoke = (stateId: string, fn: lambda.IFunction, comment: string, extra: Partial<tasks.LambdaInvokeProps> = {}) => {
      const task = new tasks.LambdaInvoke(this, stateId, {
        lambdaFunction: fn,
        comment,
        outputPath: '$.Payload',
        retryOnServiceExceptions: false,
        ...extra,
      });
      task.addRetry({
        errors: TRANSIENT_LAMBDA_ERRORS,
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxAttempts: 5,
        maxDelay: Duration.minutes(1),
        jitterStrategy: sfn.JitterType.FULL,
      });
      return task;
    };

    const failed = new sfn.Fail(this, 'AnalysisFailed', {
      comment: 'the failure was recorded by RecordFailure (failure.json in the results bucket)',
      error: 'Mzforge.AnalysisFailed',
      causePath: '$.error.Cause',
    });
    const recordFailure = invoke('RecordFailure', f['record-failure'], `records the failure (schema ${ENGINE_STEPS['record-failure'].schema})`, {
      outputPath: undefined,
      resultPath: sfn.JsonPath.DISCARD,
    }).next(failed);
    const catchInto = <T extends sfn.TaskStateBase | sfn.Map>(state: T): T => {
      state.addCatch(recordFailure, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
      return state;
    };

    const preprocess = catchInto(
      invoke('Preprocess', f.preprocess, `reads the request, sizes the inputs, sets $.route (schema ${ENGINE_STEPS.preprocess.schema})`),
    );

    const postprocess = catchInto(
      invoke('Postprocess', f.postprocess, `merges results and marks the analysis done (schema ${ENGINE_STEPS.postprocess.schema})`),
    ).next(new sfn.Succeed(this, 'AnalysisSucceeded'));

    const analyzeEachInput = new sfn.Map(this, 'AnalyzeEachInput', {
      comment: 'one Lambda analysis per input file of the analysis',
      itemsPath: '$.inputs',
      itemSelector: {
        'analysisId.$': '$.analysisId',
        'input.$': '$$.Map.Item.Value',
        'index.$': '$$.Map.Item.Index',
      },
      maxConcurrency: 10,
      resultPath: '$.analyses',
    });
    analyzeEachInput.itemProcessor(
      invoke('AnalyzeInLambda', f.analyze, `analyses one input (schema ${ENGINE_STEPS.analyze.schema})`),
    );
    analyzeEachInput.next(postprocess);

    const submitJob = (stateId: string, arraySize: number | undefined) => {
      const task = new tasks.BatchSubmitJob(this, stateId, {
        comment: arraySize === undefined ? 'one Batch job for a single large input' : 'a Batch array job, one child per input',
        jobName: sfn.JsonPath.format('mzforge-{}', sfn.JsonPath.stringAt('$.analysisId')),
        jobQueueArn: props.batch.jobQueue.jobQueueArn,
        jobDefinitionArn: props.batch.jobDefinition.jobDefinitionArn,
        arraySize,
        integrationPattern: sfn.IntegrationPattern.RUN_JOB,
        containerOverrides: {
          environment: {
            MZFORGE_ANALYSIS_ID: sfn.JsonPath.stringAt('$.analysisId'),
            MZFORGE_MANIFEST_KEY: sfn.JsonPath.stringAt('$.manifestKey'),
          },
        },
        resultPath: '$.batchJob',
        resultSelector: { 'jobId.$': '$.JobId', 'status.$': '$.Status' },
        // No `taskTimeout`: for this task it overrides the job definition's per-attempt timeout
        // (Batch's AttemptDurationSeconds), which the job definition already sets to jobTimeout.
        // A child may be retried (up to jobAttempts x jobTimeout) and an array job's children
        // run in waves as vCPUs allow; the analysis as a whole is bounded by the state machine's
        // timeout (analysisTimeout).
      });
      task.addRetry({
        errors: TRANSIENT_BATCH_ERRORS,
        interval: Duration.seconds(10),
        backoffRate: 2,
        maxAttempts: 3,
        jitterStrategy: sfn.JitterType.FULL,
      });
      return catchInto(task).next(postprocess);
    };

    const batchRoute = new sfn.Choice(this, 'BatchArrayOrSingle', { comment: 'array jobs need two or more children' })
      .when(sfn.Condition.numberGreaterThan('$.inputCount', 1), submitJob('AnalyzeInBatchArray', sfn.JsonPath.numberAt('$.inputCount')))
      .otherwise(submitJob('AnalyzeInBatch', undefined));

    // An input analyze finds too slow for a Lambda's time (it refuses up front, before any work)
    // sends the analysis to Batch: the Batch jobs read analysis.json, and skip the inputs whose
    // results the Lambdas already published. The state keeps preprocess's answer (inputCount,
    // manifestKey); the Map's error goes aside. Every other error is recorded as a failure.
    analyzeEachInput.addCatch(batchRoute, { errors: [TOO_LARGE_FOR_LAMBDA], resultPath: '$.lambdaFallback' });
    catchInto(analyzeEachInput);

    const route = new sfn.Choice(this, 'RouteBySize', { comment: 'preprocess decides: small analyses in Lambda, large ones in Batch' })
      .when(sfn.Condition.stringEquals('$.route', 'lambda'), analyzeEachInput)
      .when(sfn.Condition.stringEquals('$.route', 'batch'), batchRoute)
      .otherwise(
        new sfn.Pass(this, 'UnknownRoute', {
          parameters: { Error: 'Mzforge.UnknownRoute', 'Cause.$': 'States.Format(\'unknown route {}\', $.route)' },
          resultPath: '$.error',
        }).next(recordFailure),
      );

    this.stateMachineLogGroup = new logs.LogGroup(this, 'StateMachineLogs', {
      logGroupName: `/aws/vendedlogs/states/mzforge-${config.envName}-analysis`,
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'AnalysisStateMachine', {
      stateMachineName: `mzforge-${config.envName}-analysis`,
      comment: 'mzforge analysis: preprocess, analyse in Lambda or Batch, postprocess',
      definitionBody: sfn.DefinitionBody.fromChainable(preprocess.next(route)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      timeout: config.batch.analysisTimeout,
      tracingEnabled: true,
      logs: { destination: this.stateMachineLogGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });

    // ---- the trigger -----------------------------------------------------------------------------
    const triggerLogs = new logs.LogGroup(this, 'TriggerLogs', {
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.trigger = new lambda.Function(this, 'Trigger', {
      description: `starts one analysis execution per request object in the uploads bucket (${config.envName})`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(TRIGGER_SOURCE),
      memorySize: 256,
      timeout: Duration.seconds(30),
      logGroup: triggerLogs,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        STATE_MACHINE_ARN: this.stateMachine.stateMachineArn,
        REQUEST_PREFIX,
      },
    });
    this.stateMachine.grantStartExecution(this.trigger);
    acknowledgeLambdaBasics(this.trigger, false);

    new events.Rule(this, 'AnalysisRequested', {
      description: 'an analysis request object landed in the uploads bucket',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.uploads.bucketName] },
          object: { key: [{ prefix: REQUEST_PREFIX }] },
        },
      },
      targets: [new targets.LambdaFunction(this.trigger, { retryAttempts: 4, maxEventAge: Duration.hours(1) })],
    });

    // ---- acknowledgements of wildcards that AWS requires -----------------------------------------
    const stack = Stack.of(this);
    const smRole = this.stateMachine.role;
    for (const fn of Object.values(this.functions)) {
      const logicalId = stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
      Validations.of(smRole).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
        reason: 'the state machine may invoke any version/alias of its own engine functions (function ARN + ":*")',
      });
    }
    Validations.of(smRole).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'X-Ray trace segments and CloudWatch Logs vended-log delivery do not support resource-level permissions',
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:aws:batch:${config.region}:${config.account}:job-definition/*]`,
        reason:
          'aws-cdk-lib BatchSubmitJob grants SubmitJob on job-definition/* (revisions change on every deploy); ' +
          'the same statement limits the queue to our own',
      },
    );
  }
}

/**
 * Every Lambda here uses the AWS-managed basic execution (and, in a VPC, ENI) policies and X-Ray.
 */
function acknowledgeLambdaBasics(fn: lambda.Function, inVpc: boolean): void {
  const managed = ['service-role/AWSLambdaBasicExecutionRole', ...(inVpc ? ['service-role/AWSLambdaVPCAccessExecutionRole'] : [])];
  for (const policy of managed) {
    Validations.of(fn).acknowledge({
      id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
      reason: policy.includes('VPC')
        ? 'AWS-managed Lambda VPC policy: creating and deleting ENIs cannot be scoped to resources'
        : 'AWS-managed Lambda basic execution policy: logs to the function log group (CreateLogGroup is a no-op, the group exists)',
    });
  }
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) do not support resource-level permissions',
  });
}

/** Inline trigger: S3 "Object Created" event for requests/<analysisId>.json -> StartExecution. */
const TRIGGER_SOURCE = `
const { SFNClient, StartExecutionCommand } = require('@aws-sdk/client-sfn');
const sfn = new SFNClient({});
const NAME = /^[A-Za-z0-9_-]{1,80}$/;

exports.handler = async (event) => {
  const bucket = event.detail.bucket.name;
  const key = event.detail.object.key;
  const prefix = process.env.REQUEST_PREFIX;
  const analysisId = key.startsWith(prefix) && key.endsWith('.json') ? key.slice(prefix.length, -5) : '';
  if (!NAME.test(analysisId)) {
    console.warn(JSON.stringify({ msg: 'ignoring object that is not an analysis request', bucket, key }));
    return { started: false };
  }
  try {
    const out = await sfn.send(new StartExecutionCommand({
      stateMachineArn: process.env.STATE_MACHINE_ARN,
      name: analysisId,
      input: JSON.stringify({ analysisId, request: { bucket, key } }),
    }));
    console.log(JSON.stringify({ msg: 'started', analysisId, executionArn: out.executionArn }));
    return { started: true, executionArn: out.executionArn };
  } catch (err) {
    if (err.name === 'ExecutionAlreadyExists') {
      return { started: false, duplicate: true };
    }
    throw err;
  }
};
`;
