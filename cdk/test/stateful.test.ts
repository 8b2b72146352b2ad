import { Match } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS, bucketNames } from '../lib/config';
import { lifecycleRules } from '../lib/constructs/storage';
import { resourcesOf, templatesFor } from './helpers';

const dev = templatesFor('dev');
const prod = templatesFor('prod');
const both = [
  ['dev', dev.stateful],
  ['prod', prod.stateful],
] as const;

function bucketNamed(t: typeof dev.stateful, name: string) {
  const found = resourcesOf(t, 'AWS::S3::Bucket').filter(([, r]) => r.Properties?.BucketName === name);
  expect(found).toHaveLength(1);
  return found[0];
}

describe('VPC', () => {
  test.each(both)('%s: spans at least two AZs with public, compute and database subnets', (env, t) => {
    const azs = ENVIRONMENTS[env].availabilityZones;
    expect(azs.length).toBeGreaterThanOrEqual(2);
    const subnets = resourcesOf(t, 'AWS::EC2::Subnet').map(([, r]) => r.Properties!);
    expect(new Set(subnets.map((s) => s.AvailabilityZone))).toEqual(new Set(azs));
    const byType = (type: string) =>
      subnets.filter((s) => (s.Tags as { Key: string; Value: string }[]).some((tag) => tag.Key === 'aws-cdk:subnet-type' && tag.Value === type));
    expect(byType('Public')).toHaveLength(azs.length);
    expect(byType('Private')).toHaveLength(azs.length);
    expect(byType('Isolated')).toHaveLength(azs.length);
    // Public subnets never hand out public IPs: only load balancers (and NAT) live there.
    for (const s of byType('Public')) expect(s.MapPublicIpOnLaunch).toBe(false);
  });

  test.each(both)('%s: S3 gateway endpoint on the private route tables', (_env, t) => {
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['.s3'])]) }),
      RouteTableIds: Match.anyValue(),
    });
  });

  test.each(both)('%s: flow logs of all traffic to CloudWatch Logs', (_env, t) => {
    t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
  });

  test('prod has a NAT gateway per AZ, dev saves with one', () => {
    expect(resourcesOf(prod.stateful, 'AWS::EC2::NatGateway')).toHaveLength(ENVIRONMENTS.prod.availabilityZones.length);
    expect(resourcesOf(dev.stateful, 'AWS::EC2::NatGateway')).toHaveLength(1);
  });
});

describe('S3', () => {
  test('lifecycle: uploads expire after 1 year, results after 5 years, with cheaper tiers first', () => {
    const names = bucketNames(ENVIRONMENTS.dev);
    for (const [name, days] of [
      [names.uploads, 365],
      [names.results, 5 * 365],
    ] as const) {
      const [, bucket] = bucketNamed(dev.stateful, name);
      const rules = bucket.Properties!.LifecycleConfiguration.Rules;
      expect(rules).toHaveLength(1);
      const rule = rules[0];
      expect(rule.Status).toBe('Enabled');
      expect(rule.ExpirationInDays).toBe(days);
      expect(rule.NoncurrentVersionExpiration.NoncurrentDays).toBe(days);
      const transitions = rule.Transitions as { StorageClass: string; TransitionInDays: number }[];
      expect(transitions.map((x) => x.StorageClass)).toEqual(['STANDARD_IA', 'GLACIER_IR']);
      for (const x of transitions) expect(x.TransitionInDays).toBeLessThan(days);
      expect(transitions[0].TransitionInDays).toBeGreaterThanOrEqual(30); // S3 minimum for Standard-IA
    }
  });

  test('lifecycle days must increase', () => {
    expect(() => lifecycleRules({ expireAfterDays: 30, infrequentAccessAfterDays: 30, glacierInstantRetrievalAfterDays: 90 })).toThrow(
      /must increase/,
    );
  });

  test.each(both)('%s: data buckets are KMS-encrypted, versioned, private and log to the log bucket', (env, t) => {
    const names = bucketNames(ENVIRONMENTS[env]);
    const [logId] = bucketNamed(t, names.logs);
    for (const name of [names.uploads, names.results]) {
      const [, bucket] = bucketNamed(t, name);
      const p = bucket.Properties!;
      expect(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('aws:kms');
      expect(p.BucketEncryption.ServerSideEncryptionConfiguration[0].BucketKeyEnabled).toBe(true);
      expect(p.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(p.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(p.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: logId });
    }
  });

  test.each(both)('%s: every bucket denies non-TLS requests', (_env, t) => {
    const buckets = resourcesOf(t, 'AWS::S3::Bucket').map(([id]) => id);
    const policies = resourcesOf(t, 'AWS::S3::BucketPolicy');
    for (const id of buckets) {
      const policy = policies.find(([, p]) => p.Properties!.Bucket.Ref === id);
      expect(policy).toBeDefined();
      expect(policy![1].Properties!.PolicyDocument.Statement).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      );
    }
  });

  test.each(both)('%s: the log bucket is encrypted, private and expires logs', (env, t) => {
    const [, bucket] = bucketNamed(t, bucketNames(ENVIRONMENTS[env]).logs);
    const p = bucket.Properties!;
    expect(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(p.PublicAccessBlockConfiguration.BlockPublicPolicy).toBe(true);
    expect(p.LifecycleConfiguration.Rules[0].ExpirationInDays).toBe(365);
  });

  test('uploads publish object events to EventBridge (the trigger listens there)', () => {
    const [, bucket] = bucketNamed(dev.stateful, bucketNames(ENVIRONMENTS.dev).uploads);
    expect(bucket.Properties!.NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
  });

  test('the data key rotates', () => {
    dev.stateful.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('prod retains buckets on stack deletion, dev does not', () => {
    for (const [, b] of resourcesOf(prod.stateful, 'AWS::S3::Bucket')) expect(b.DeletionPolicy).toBe('Retain');
    for (const [, b] of resourcesOf(dev.stateful, 'AWS::S3::Bucket')) expect(b.DeletionPolicy).toBe('Delete');
  });
});

describe('RDS PostgreSQL', () => {
  test.each(both)('%s: Multi-AZ, encrypted, private, backed up, IAM auth', (env, t) => {
    t.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      MultiAZ: true,
      StorageEncrypted: true,
      PubliclyAccessible: false,
      BackupRetentionPeriod: ENVIRONMENTS[env].database.backupRetentionDays,
      EnableIAMDatabaseAuthentication: true,
      Port: '5432',
    });
  });

  test.each(both)('%s: credentials are generated into Secrets Manager and rotated', (_env, t) => {
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password', SecretStringTemplate: '{"username":"mzforge_admin"}' }),
    });
    t.hasResourceProperties('AWS::RDS::DBInstance', {
      MasterUsername: 'mzforge_admin',
      // A dynamic reference into the generated secret, never a literal password.
      MasterUserPassword: { 'Fn::Join': ['', Match.arrayWith(['{{resolve:secretsmanager:'])] },
    });
    t.resourceCountIs('AWS::SecretsManager::RotationSchedule', 1);
  });

  test.each(both)('%s: only in the isolated database subnets', (_env, t) => {
    const isolated = resourcesOf(t, 'AWS::EC2::Subnet')
      .filter(([, s]) => (s.Properties!.Tags as { Key: string; Value: string }[]).some((x) => x.Key === 'aws-cdk:subnet-type' && x.Value === 'Isolated'))
      .map(([id]) => ({ Ref: id }));
    const [[, group]] = resourcesOf(t, 'AWS::RDS::DBSubnetGroup');
    expect(group.Properties!.SubnetIds).toEqual(isolated);
  });

  test.each(both)('%s: TLS enforced by the parameter group', (_env, t) => {
    t.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: Match.objectLike({ 'rds.force_ssl': '1' }) });
  });

  test('deletion protection: on in prod, off in dev', () => {
    prod.stateful.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: true });
    dev.stateful.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: false });
    prod.stateful.hasResource('AWS::RDS::DBInstance', { DeletionPolicy: 'Snapshot' });
  });

  test('prod is bigger than dev', () => {
    dev.stateful.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.t4g.medium' });
    prod.stateful.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.m7g.large' });
  });
});
