/**
 * Typed per-environment configuration for the mzforge platform.
 *
 * Everything that differs between `dev` and `prod` lives here and nowhere else: sizes, retention,
 * deletion protection, domains, accounts. Constructs read a single {@link EnvConfig}; they never
 * branch on the environment name themselves.
 */
import { Duration } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

export type EnvName = 'dev' | 'prod';

/** Cost-allocation tag keys applied to every resource (activate them in the Billing console). */
export const TAG_KEYS = {
  project: 'project',
  environment: 'environment',
  component: 'component',
} as const;

export const PROJECT = 'mzforge';

/** Names of the components used as the value of the `component` tag. */
export type Component =
  | 'network'
  | 'storage'
  | 'database'
  | 'processing'
  | 'batch'
  | 'analysis-api'
  | 'frontend'
  | 'edge'
  | 'monitoring'
  | 'cost'
  | 'pipeline';

export interface BucketLifecycleConfig {
  /** Objects (and non-current versions) are deleted after this many days. */
  readonly expireAfterDays: number;
  /** Move to S3 Standard-IA after this many days. */
  readonly infrequentAccessAfterDays: number;
  /** Move to S3 Glacier Instant Retrieval after this many days (must be < expireAfterDays). */
  readonly glacierInstantRetrievalAfterDays: number;
}

export interface DatabaseConfig {
  /** RDS instance class, e.g. `m7g.large` (Graviton). */
  readonly instanceType: string;
  readonly allocatedStorageGiB: number;
  readonly maxAllocatedStorageGiB: number;
  readonly backupRetentionDays: number;
  readonly deletionProtection: boolean;
  /** PostgreSQL major.minor, e.g. `16.4`. */
  readonly postgresFullVersion: string;
  readonly postgresMajorVersion: string;
}

export interface FrontEndConfig {
  /** Graviton instance type for the Django front end. */
  readonly instanceType: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** Target average CPU utilisation for the scaling policy. */
  readonly targetCpuPercent: number;
  /** Container image tag (in the front-end ECR repository) that the instances run under gunicorn. */
  readonly imageTag: string;
}

export interface AnalysisApiConfig {
  /** Kubernetes minor version, e.g. `1.34`. */
  readonly kubernetesVersion: string;
  /** Graviton instance type for the EKS worker nodes. */
  readonly nodeInstanceType: string;
  readonly minNodes: number;
  readonly maxNodes: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Target average CPU utilisation of the horizontal pod autoscaler. */
  readonly targetCpuPercent: number;
  /** Container image tag (in the API ECR repository). */
  readonly imageTag: string;
}

export interface BatchConfig {
  /** Graviton instance classes (families) the compute environments may launch. */
  readonly instanceClasses: string[];
  readonly maxvCpus: number;
  /** Highest Spot price as a percentage of the On-Demand price. */
  readonly spotBidPercentage: number;
  /** vCPUs and memory of one job (one array child). */
  readonly jobVcpus: number;
  readonly jobMemoryMiB: number;
  readonly jobTimeout: Duration;
  /** Attempts per job, including retries after a Spot interruption. */
  readonly jobAttempts: number;
  /**
   * The longest an analysis may take, start to end (the state machine's timeout). An array job's
   * children run in waves of `maxvCpus / jobVcpus`, each child up to `jobAttempts` attempts of
   * `jobTimeout`, so this bounds the Batch route as a whole; it must hold at least one child's
   * every attempt.
   */
  readonly analysisTimeout: Duration;
}

export interface LambdaConfig {
  readonly memoryMiB: number;
  readonly timeout: Duration;
}

export interface BudgetConfig {
  readonly monthlyLimitUsd: number;
  /** Alert when actual spend passes these percentages of the limit. */
  readonly actualThresholdsPercent: number[];
  /** Alert when forecast spend passes this percentage of the limit. */
  readonly forecastThresholdPercent: number;
}

export interface EnvConfig {
  readonly envName: EnvName;
  readonly account: string;
  readonly region: string;
  /** Public DNS zone created for this environment; the front end is `www.`, the API `api.`. */
  readonly domainName: string;
  readonly vpcCidr: string;
  /** Explicit AZs (no context lookup at synth time); at least two. */
  readonly availabilityZones: string[];
  /** NAT gateways (one per AZ in prod for resilience, one in dev for cost). */
  readonly natGateways: number;
  readonly logRetention: RetentionDays;
  readonly uploads: BucketLifecycleConfig;
  readonly results: BucketLifecycleConfig;
  readonly database: DatabaseConfig;
  readonly frontEnd: FrontEndConfig;
  readonly analysisApi: AnalysisApiConfig;
  readonly batch: BatchConfig;
  readonly lambda: LambdaConfig;
  /** Requests per 5 minutes per client IP before the WAF rate-based rule blocks. */
  readonly wafRateLimitPer5Min: number;
  /** Create AWS Shield Advanced protections (the account must already be subscribed). */
  readonly shieldAdvanced: boolean;
  /** Where alarms, budget alerts and failed-job notices are e-mailed. */
  readonly alertEmail: string;
  readonly budget: BudgetConfig;
  /** Keep stateful resources (buckets, database, keys) when the stack is deleted. */
  readonly retainStatefulResources: boolean;
}

/** Where the pipeline itself lives and which repository it follows. */
export interface PipelineConfig {
  readonly account: string;
  readonly region: string;
  /** CodeConnections (CodeStar Connections) connection to GitHub. */
  readonly connectionArn: string;
  readonly repository: string;
  readonly branch: string;
}

const COMMON_UPLOADS: BucketLifecycleConfig = {
  expireAfterDays: 365,
  infrequentAccessAfterDays: 30,
  glacierInstantRetrievalAfterDays: 90,
};

const COMMON_RESULTS: BucketLifecycleConfig = {
  expireAfterDays: 5 * 365,
  infrequentAccessAfterDays: 90,
  glacierInstantRetrievalAfterDays: 365,
};

export const ENVIRONMENTS: Record<EnvName, EnvConfig> = {
  dev: {
    envName: 'dev',
    account: '111111111111',
    region: 'eu-west-1',
    domainName: 'dev.mzforge.example.org',
    vpcCidr: '10.10.0.0/16',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    natGateways: 1,
    logRetention: RetentionDays.ONE_MONTH,
    uploads: COMMON_UPLOADS,
    results: COMMON_RESULTS,
    database: {
      instanceType: 't4g.medium',
      allocatedStorageGiB: 20,
      maxAllocatedStorageGiB: 100,
      backupRetentionDays: 7,
      deletionProtection: false,
      postgresFullVersion: '16.13',
      postgresMajorVersion: '16',
    },
    frontEnd: {
      instanceType: 't4g.small',
      minCapacity: 2,
      maxCapacity: 4,
      targetCpuPercent: 60,
      imageTag: 'latest',
    },
    analysisApi: {
      kubernetesVersion: '1.34',
      nodeInstanceType: 'm7g.large',
      minNodes: 2,
      maxNodes: 4,
      minReplicas: 2,
      maxReplicas: 6,
      targetCpuPercent: 70,
      imageTag: 'latest',
    },
    batch: {
      instanceClasses: ['c7g', 'm7g'],
      maxvCpus: 64,
      spotBidPercentage: 80,
      jobVcpus: 2,
      jobMemoryMiB: 4096,
      jobTimeout: Duration.hours(2),
      jobAttempts: 3,
      analysisTimeout: Duration.hours(24),
    },
    lambda: { memoryMiB: 1769, timeout: Duration.minutes(5) },
    wafRateLimitPer5Min: 2000,
    shieldAdvanced: false,
    alertEmail: 'mzforge-dev-alerts@example.org',
    budget: { monthlyLimitUsd: 500, actualThresholdsPercent: [80, 100], forecastThresholdPercent: 100 },
    retainStatefulResources: false,
  },
  prod: {
    envName: 'prod',
    account: '222222222222',
    region: 'eu-west-1',
    domainName: 'mzforge.example.org',
    vpcCidr: '10.20.0.0/16',
    availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
    natGateways: 3,
    logRetention: RetentionDays.ONE_YEAR,
    uploads: COMMON_UPLOADS,
    results: COMMON_RESULTS,
    database: {
      instanceType: 'm7g.large',
      allocatedStorageGiB: 100,
      maxAllocatedStorageGiB: 1000,
      backupRetentionDays: 30,
      deletionProtection: true,
      postgresFullVersion: '16.13',
      postgresMajorVersion: '16',
    },
    frontEnd: {
      instanceType: 'm7g.large',
      minCapacity: 3,
      maxCapacity: 12,
      targetCpuPercent: 50,
      imageTag: 'stable',
    },
    analysisApi: {
      kubernetesVersion: '1.34',
      nodeInstanceType: 'm7g.xlarge',
      minNodes: 3,
      maxNodes: 12,
      minReplicas: 3,
      maxReplicas: 30,
      targetCpuPercent: 60,
      imageTag: 'stable',
    },
    batch: {
      instanceClasses: ['c7g', 'm7g', 'r7g'],
      maxvCpus: 1024,
      spotBidPercentage: 70,
      jobVcpus: 4,
      jobMemoryMiB: 8192,
      jobTimeout: Duration.hours(6),
      jobAttempts: 5,
      analysisTimeout: Duration.days(7),
    },
    lambda: { memoryMiB: 3008, timeout: Duration.minutes(10) },
    wafRateLimitPer5Min: 1000,
    shieldAdvanced: true,
    alertEmail: 'mzforge-oncall@example.org',
    budget: { monthlyLimitUsd: 5000, actualThresholdsPercent: [50, 80, 100], forecastThresholdPercent: 100 },
    retainStatefulResources: true,
  },
};

export const PIPELINE: PipelineConfig = {
  account: '333333333333',
  region: 'eu-west-1',
  connectionArn:
    'arn:aws:codeconnections:eu-west-1:333333333333:connection/00000000-0000-0000-0000-000000000000',
  repository: 'mzforge/mzforge',
  branch: 'main',
};

/** Build outputs the stacks package as assets (see README, "Assets"). */
export interface AssetPaths {
  /**
   * The `mzforge-lambda` package built by cargo-lambda: either the `bootstrap.zip` file or a
   * directory holding a `bootstrap` executable.
   */
  readonly lambdaCode: string;
  /** Docker build context of the Batch runner image. */
  readonly batchImageDirectory: string;
  /** Dockerfile path relative to `batchImageDirectory`. */
  readonly batchImageDockerfile: string;
}

/**
 * Bucket names are derived from the environment (and made unique by account and region) so that
 * IAM statements name the buckets literally and the stateless stack needs no bucket exports.
 */
export function bucketNames(config: EnvConfig): { uploads: string; results: string; logs: string } {
  const suffix = `${config.account}-${config.region}`;
  return {
    uploads: `${PROJECT}-${config.envName}-uploads-${suffix}`,
    results: `${PROJECT}-${config.envName}-results-${suffix}`,
    logs: `${PROJECT}-${config.envName}-logs-${suffix}`,
  };
}

export function envConfig(name: string): EnvConfig {
  if (name !== 'dev' && name !== 'prod') {
    throw new Error(`unknown environment '${name}': expected 'dev' or 'prod'`);
  }
  return ENVIRONMENTS[name];
}
