import { RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr_assets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { AssetPaths, EnvConfig } from '../config';
import { DataBucketRef, grantBucket, grantResultReplacement } from '../grants';

/**
 * `mzforge batch` exits 75 (EX_TEMPFAIL) for transient failures (network, throttling, 5xx, an
 * input changed mid-read) and for SIGTERM (Spot interruption, job stop): the only exit code worth
 * a retry. 65 (bad input), 66 (missing input), 78 (configuration), 70 (internal) and 2 (usage)
 * are permanent (batch-runner/src/error.rs `FailureKind::exit_code`, batch-runner/src/batch.rs).
 */
export const RETRYABLE_EXIT_CODE = 75;

/**
 * The job's command (the image's entry point is `mzforge`): `mzforge batch` with one worker thread
 * per vCPU of the job. Without `--threads` the engine starts one per core of the *host*: Batch on
 * EC2 enforces a job's vCPUs as CPU shares, not as a quota that the engine could see, so a 2-vCPU
 * job on a 64-core c7g.16xlarge would run 64 workers (each with its own buffers) in 4 GiB.
 */
export function batchJobCommand(vcpus: number): string[] {
  return ['batch', '--threads', String(vcpus)];
}

/** The Batch hosts are Graviton: the image is built for linux/arm64 only. */
export const BATCH_IMAGE_ARCH = 'arm64';

export interface BatchComputeProps {
  readonly config: EnvConfig;
  readonly assets: AssetPaths;
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly uploads: DataBucketRef;
  readonly results: DataBucketRef;
}

/**
 * AWS Batch for analyses too large for Lambda: Graviton instances, Spot first with an On-Demand
 * environment behind it in the same queue, and a job definition built from the batch-runner image.
 * Jobs are submitted by the state machine, as array jobs when an analysis has several inputs
 * (each child reads `AWS_BATCH_JOB_ARRAY_INDEX`).
 */
export class BatchCompute extends Construct {
  public readonly jobQueue: batch.JobQueue;
  public readonly jobDefinition: batch.EcsJobDefinition;
  public readonly spotEnvironment: batch.ManagedEc2EcsComputeEnvironment;
  public readonly onDemandEnvironment: batch.ManagedEc2EcsComputeEnvironment;
  public readonly jobRole: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BatchComputeProps) {
    super(scope, id);
    const { config } = props;
    const c = config.batch;
    const instanceClasses = c.instanceClasses.map((name) => graviton(name));

    const common = {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.securityGroup],
      instanceClasses,
      useOptimalInstanceClasses: false,
      minvCpus: 0,
      maxvCpus: c.maxvCpus,
      updateToLatestImageVersion: true,
    };
    this.spotEnvironment = new batch.ManagedEc2EcsComputeEnvironment(this, 'Spot', {
      ...common,
      spot: true,
      spotBidPercentage: c.spotBidPercentage,
      allocationStrategy: batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED,
    });
    this.onDemandEnvironment = new batch.ManagedEc2EcsComputeEnvironment(this, 'OnDemand', {
      ...common,
      spot: false,
      allocationStrategy: batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
    });

    this.jobQueue = new batch.JobQueue(this, 'Queue', {
      priority: 1,
      computeEnvironments: [
        // Order matters: Spot first, On-Demand only when Spot cannot place the job.
        { computeEnvironment: this.spotEnvironment, order: 1 },
        { computeEnvironment: this.onDemandEnvironment, order: 2 },
      ],
    });

    this.logGroup = new logs.LogGroup(this, 'JobLogs', {
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.jobRole = new iam.Role(this, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'batch-runner jobs: read uploads, write results',
    });
    grantBucket(this.jobRole, this.jobRole, props.uploads, 'read');
    grantBucket(this.jobRole, this.jobRole, props.results, 'readwrite');
    // A result of another version or other parameters is replaced: its manifest.json goes first.
    grantResultReplacement(this.jobRole, this.jobRole, props.results);

    const executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'batch-runner jobs: pull the image, write logs',
    });

    // The Dockerfile copies `dist/linux-${TARGETARCH}/mzforge`, the static binary that
    // `batch-runner/build-image.sh --arch arm64 --stage-only` stages (the pipeline runs it before
    // synth); TARGETARCH is passed as build-image.sh passes it, not left to BuildKit's default.
    const image = ecs.ContainerImage.fromAsset(props.assets.batchImageDirectory, {
      file: props.assets.batchImageDockerfile,
      platform: ecr_assets.Platform.LINUX_ARM64,
      buildArgs: { TARGETARCH: BATCH_IMAGE_ARCH },
    });

    this.jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      container: new batch.EcsEc2ContainerDefinition(this, 'Container', {
        image,
        cpu: c.jobVcpus,
        memory: Size.mebibytes(c.jobMemoryMiB),
        jobRole: this.jobRole,
        executionRole,
        readonlyRootFilesystem: false,
        command: batchJobCommand(c.jobVcpus),
        environment: {
          // The ECS agent on EC2 sets no region (Fargate does); without one the runner's S3 client
          // (object_store) signs for us-east-1 and every request to the buckets here fails.
          AWS_REGION: Stack.of(this).region,
          AWS_DEFAULT_REGION: Stack.of(this).region,
          MZFORGE_ENVIRONMENT: config.envName,
          MZFORGE_UPLOADS_BUCKET: props.uploads.bucketName,
          MZFORGE_RESULTS_BUCKET: props.results.bucketName,
        },
        logging: ecs.LogDriver.awsLogs({ logGroup: this.logGroup, streamPrefix: 'batch-runner' }),
      }),
      timeout: c.jobTimeout,
      retryAttempts: c.jobAttempts,
      retryStrategies: [
        // A reclaimed Spot host ("Host EC2 (instance i-...) terminated.") is retried...
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
        // ...so is an image pull hiccup; a job that fails on its own (non-zero exit) is not.
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
        // `mzforge batch` exits 75 (EX_TEMPFAIL) for transient failures and SIGTERM.
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom({ onExitCode: String(RETRYABLE_EXIT_CODE) })),
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.NON_ZERO_EXIT_CODE),
      ],
      propagateTags: true,
    });

    Validations.of(executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken (pulling the image asset) does not support resource-level permissions',
    });
    for (const env of [this.spotEnvironment, this.onDemandEnvironment]) {
      Validations.of(env).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]',
        reason: 'the ECS agent on Batch hosts needs the AWS-maintained container-instance policy; jobs use their own job role',
      });
    }
  }
}

/** Maps a Graviton family name from the config (e.g. `c7g`) to an instance class, refusing x86. */
export function graviton(name: string): ec2.InstanceClass {
  if (!/^[a-z]+\d+g[a-z]*$/.test(name)) {
    throw new Error(`'${name}' is not a Graviton instance family`);
  }
  return name as ec2.InstanceClass;
}
