/**
 * Least-privilege access to the platform's data buckets.
 *
 * CDK's `bucket.grantReadWrite` hands out wildcard actions (`s3:GetObject*`, `s3:List*`,
 * `kms:GenerateDataKey*`, ...). These helpers grant the exact actions the components use, on
 * the bucket named literally, so that the only wildcard left is the object key (`bucket/*`),
 * which is acknowledged here with its reason.
 */
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { IConstruct } from 'constructs';

export interface DataBucketRef {
  /** Literal bucket name (see `bucketNames`). */
  readonly bucketName: string;
  /** Customer-managed key the bucket encrypts with. */
  readonly key: kms.IKey;
  /** What the bucket holds, for the acknowledgement reason. */
  readonly purpose: string;
}

export type BucketAccess = 'read' | 'write' | 'readwrite';

export function bucketArn(bucketName: string): string {
  return `arn:aws:s3:::${bucketName}`;
}

export function objectsArn(bucketName: string): string {
  return `${bucketArn(bucketName)}/*`;
}

/**
 * Grants `access` on the objects of `bucket` to `grantee` and acknowledges the object-key wildcard
 * on `ackScope` (the role, or the construct owning it).
 */
export function grantBucket(grantee: iam.IGrantable, ackScope: IConstruct, bucket: DataBucketRef, access: BucketAccess): void {
  const read = access !== 'write';
  const write = access !== 'read';
  const objectActions = [...(read ? ['s3:GetObject'] : []), ...(write ? ['s3:PutObject', 's3:AbortMultipartUpload'] : [])];
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucketArn(bucket.bucketName)] }),
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: objectActions, resources: [objectsArn(bucket.bucketName)] }),
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: write ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
      resources: [bucket.key.keyArn],
    }),
  );
  Validations.of(ackScope).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${objectsArn(bucket.bucketName)}]`,
    reason: `object keys in the ${bucket.purpose} bucket are data-dependent (analysis ids); the bucket itself is named exactly`,
  });
}

/**
 * Where the engine publishes one result per input in the results bucket:
 * `analyses/<analysisId>/results/<stem>/` (batch-runner/src/analysis.rs `results_prefix`).
 */
export const RESULT_OBJECTS = 'analyses/*/results/*';

/**
 * Lets the engine replace a stale result, and only that: before a result of another engine version
 * or other parameters (or a damaged `manifest.json`) is rewritten, the engine deletes the old
 * `manifest.json`, then the old result's objects the new one will not rewrite
 * (batch-runner/src/remote.rs `process`). Without `s3:DeleteObject` that is AccessDenied, which the
 * engine reports as a configuration error (exit 78, `Mzforge.InvalidRequest`): never retried.
 */
export function grantResultReplacement(grantee: iam.IGrantable, ackScope: IConstruct, results: DataBucketRef): void {
  const resource = `${bucketArn(results.bucketName)}/${RESULT_OBJECTS}`;
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [resource] }));
  Validations.of(ackScope).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${resource}]`,
    reason: 'the engine deletes only inside per-input result prefixes (analyses/<analysisId>/results/<stem>/), whose ids are data-dependent',
  });
}
