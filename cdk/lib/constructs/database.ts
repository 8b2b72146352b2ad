import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';
import { POSTGRES_PORT } from './network';

export interface DatabaseProps {
  readonly config: EnvConfig;
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly rotationSecurityGroup: ec2.ISecurityGroup;
}

/**
 * RDS PostgreSQL, Multi-AZ, encrypted, in the isolated database subnets. Holds analyses, users and
 * execution status. The admin credentials are generated into Secrets Manager and rotated.
 */
export class Database extends Construct {
  public readonly instance: rds.DatabaseInstance;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { config } = props;
    const db = config.database;
    const instanceIdentifier = `mzforge-${config.envName}`;
    const engine = rds.DatabaseInstanceEngine.postgres({
      version: rds.PostgresEngineVersion.of(db.postgresFullVersion, db.postgresMajorVersion),
    });

    // Log groups created up front so that they carry our retention (no LogRetention custom resource).
    const logGroups = ['postgresql', 'upgrade'].map(
      (name) =>
        new logs.LogGroup(this, `${name}Logs`, {
          logGroupName: `/aws/rds/instance/${instanceIdentifier}/${name}`,
          retention: config.logRetention,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
    );

    this.instance = new rds.DatabaseInstance(this, 'Postgres', {
      instanceIdentifier,
      engine,
      instanceType: new ec2.InstanceType(db.instanceType),
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [props.securityGroup],
      port: POSTGRES_PORT,
      multiAz: true,
      publiclyAccessible: false,
      storageEncrypted: true,
      storageType: rds.StorageType.GP3,
      allocatedStorage: db.allocatedStorageGiB,
      maxAllocatedStorage: db.maxAllocatedStorageGiB,
      credentials: rds.Credentials.fromGeneratedSecret('mzforge_admin', {
        secretName: `mzforge/${config.envName}/database/admin`,
      }),
      databaseName: 'mzforge',
      iamAuthentication: true,
      backupRetention: Duration.days(db.backupRetentionDays),
      preferredBackupWindow: '02:00-03:00',
      preferredMaintenanceWindow: 'sun:03:30-sun:04:30',
      deleteAutomatedBackups: false,
      copyTagsToSnapshot: true,
      deletionProtection: db.deletionProtection,
      removalPolicy: config.retainStatefulResources ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      autoMinorVersionUpgrade: true,
      enablePerformanceInsights: true,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      parameterGroup: new rds.ParameterGroup(this, 'Parameters', {
        engine,
        description: `mzforge ${config.envName}: TLS only, slow statements logged`,
        parameters: {
          'rds.force_ssl': '1',
          log_min_duration_statement: '1000',
        },
      }),
    });
    for (const group of logGroups) {
      this.instance.node.addDependency(group);
    }

    this.instance.addRotationSingleUser({
      automaticallyAfter: Duration.days(30),
      securityGroup: props.rotationSecurityGroup,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });

    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason:
        'PostgreSQL keeps its default port: only the compute security groups can reach it, from private subnets; ' +
        'a non-standard port adds no protection',
    });
    if (!db.deletionProtection) {
      Validations.of(this.instance).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason: `deletion protection is off in ${config.envName} by configuration (disposable environment); prod enables it`,
      });
    }
  }
}
