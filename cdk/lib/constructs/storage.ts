import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BucketLifecycleConfig, EnvConfig, bucketNames } from '../config';

export interface StorageProps {
  readonly config: EnvConfig;
}

/**
 * The data the platform keeps: uploads (raw runs), results (Parquet/mzML), the access-log bucket,
 * and the container repositories of the analysis API and the front end.
 */
export class Storage extends Construct {
  /** Server access logs of the data buckets and ALB access logs. */
  public readonly logBucket: s3.Bucket;
  public readonly uploadsBucket: s3.Bucket;
  public readonly resultsBucket: s3.Bucket;
  /** Customer-managed key for the uploads and results buckets. */
  public readonly dataKey: kms.Key;
  public readonly apiRepository: ecr.Repository;
  public readonly frontEndRepository: ecr.Repository;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const { config } = props;
    const names = bucketNames(config);
    const removalPolicy = config.retainStatefulResources ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.logBucket = new s3.Bucket(this, 'LogBucket', {
      bucketName: names.logs,
      // ALB access logging only supports SSE-S3 on the destination bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: 'expire-logs',
          expiration: Duration.days(365),
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy,
      autoDeleteObjects: false,
    });

    this.dataKey = new kms.Key(this, 'DataKey', {
      description: `mzforge ${config.envName} uploads and results buckets`,
      enableKeyRotation: true,
      removalPolicy,
    });

    const dataBucket = (bucketId: string, bucketName: string, lifecycle: BucketLifecycleConfig, extra: Partial<s3.BucketProps>) =>
      new s3.Bucket(this, bucketId, {
        bucketName,
        encryption: s3.BucketEncryption.KMS,
        encryptionKey: this.dataKey,
        bucketKeyEnabled: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        versioned: true,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        serverAccessLogsBucket: this.logBucket,
        serverAccessLogsPrefix: `s3/${bucketName}/`,
        lifecycleRules: lifecycleRules(lifecycle),
        removalPolicy,
        ...extra,
      });

    this.uploadsBucket = dataBucket('UploadsBucket', names.uploads, config.uploads, {
      cors: [
        {
          // Browsers upload runs with pre-signed URLs handed out by the front end.
          allowedOrigins: [`https://www.${config.domainName}`],
          allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.POST],
          allowedHeaders: ['*'],
          maxAge: 3000,
        },
      ],
    });
    // The trigger function listens for analysis requests through EventBridge. Set on the L1 so that
    // no notifications custom resource (and its Lambda) is needed.
    (this.uploadsBucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };
    this.resultsBucket = dataBucket('ResultsBucket', names.results, config.results, {});

    const repository = (repoId: string, name: string) =>
      new ecr.Repository(this, repoId, {
        repositoryName: `mzforge-${config.envName}/${name}`,
        imageScanOnPush: true,
        encryption: ecr.RepositoryEncryption.KMS,
        lifecycleRules: [{ description: 'keep the last 50 images', maxImageCount: 50 }],
        removalPolicy,
        emptyOnDelete: false,
      });
    this.apiRepository = repository('ApiRepository', 'analysis-api');
    this.frontEndRepository = repository('FrontEndRepository', 'frontend');
  }
}

/** Transitions to cheaper classes, then expiry; non-current versions follow the same schedule. */
export function lifecycleRules(c: BucketLifecycleConfig): s3.LifecycleRule[] {
  if (!(c.infrequentAccessAfterDays < c.glacierInstantRetrievalAfterDays && c.glacierInstantRetrievalAfterDays < c.expireAfterDays)) {
    throw new Error(`lifecycle days must increase: ${JSON.stringify(c)}`);
  }
  return [
    {
      id: 'tier-then-expire',
      transitions: [
        { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(c.infrequentAccessAfterDays) },
        {
          storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
          transitionAfter: Duration.days(c.glacierInstantRetrievalAfterDays),
        },
      ],
      expiration: Duration.days(c.expireAfterDays),
      noncurrentVersionTransitions: [
        {
          storageClass: s3.StorageClass.INFREQUENT_ACCESS,
          transitionAfter: Duration.days(c.infrequentAccessAfterDays),
        },
      ],
      noncurrentVersionExpiration: Duration.days(c.expireAfterDays),
      abortIncompleteMultipartUploadAfter: Duration.days(7),
    },
  ];
}
