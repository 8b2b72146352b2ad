import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';
import { DataBucketRef, grantBucket } from '../grants';
import { APP_PORT } from './network';
import { PublicAlb } from './public-alb';

export interface FrontEndProps {
  readonly config: EnvConfig;
  readonly vpc: ec2.IVpc;
  readonly albSecurityGroup: ec2.ISecurityGroup;
  readonly instanceSecurityGroup: ec2.ISecurityGroup;
  readonly zone: route53.IHostedZone;
  readonly logBucket: s3.IBucket;
  readonly repository: ecr.IRepository;
  readonly uploads: DataBucketRef;
  readonly results: DataBucketRef;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly alarmTopic: sns.ITopic;
}

/** Health-check path served by both the front end and the analysis API. */
export const HEALTH_PATH = '/readyz';

/**
 * The Django front end: an Auto Scaling group of Graviton instances (launch template, IMDSv2,
 * encrypted volumes) running the front-end image under gunicorn on port 8000, behind an HTTPS ALB.
 *
 * The site (web/ in the repository) is configured by environment variables: it calls the analysis
 * API at `https://api.<domain>` with one admin token (to provision a per-user API token at
 * sign-up), read from `adminTokenSecret`, which an operator fills with
 * `mzforge-api create-user <address> --admin`; Django's secret key is generated into
 * `djangoSecretKey`. Both are read at start with the instance role.
 */
export class FrontEnd extends Construct {
  public readonly alb: PublicAlb;
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  public readonly djangoSecretKey: secretsmanager.Secret;
  public readonly adminTokenSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: FrontEndProps) {
    super(scope, id);
    const { config } = props;
    const c = config.frontEnd;
    const { region, account } = Stack.of(this);
    const image = props.repository.repositoryUriForTag(c.imageTag);

    this.alb = new PublicAlb(this, 'Alb', {
      vpc: props.vpc,
      securityGroup: props.albSecurityGroup,
      zone: props.zone,
      hostNames: [`www.${config.domainName}`, config.domainName],
      logBucket: props.logBucket,
      logPrefix: 'alb/frontend',
      targetPort: APP_PORT,
      healthCheckPath: HEALTH_PATH,
    });

    this.djangoSecretKey = new secretsmanager.Secret(this, 'DjangoSecretKey', {
      description: `mzforge ${config.envName} front end: Django SECRET_KEY (signs sessions and reset links)`,
      generateSecretString: { passwordLength: 64, excludeCharacters: '"\\\'' },
    });
    this.adminTokenSecret = new secretsmanager.Secret(this, 'ApiAdminToken', {
      description: `mzforge ${config.envName} front end: the analysis API admin token (set it from mzforge-api create-user --admin)`,
    });
    for (const secret of [this.djangoSecretKey, this.adminTokenSecret]) {
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'rotating it would log every user out (Django key) or needs the API to mint tokens; rotated by hand on redeploy',
      });
    }
    const hosts = [`www.${config.domainName}`, config.domainName];

    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      'set -euo pipefail',
      'dnf install -y docker',
      'systemctl enable --now docker',
      `aws ecr get-login-password --region ${region} | docker login --username AWS --password-stdin ${account}.dkr.ecr.${region}.amazonaws.com`,
      `docker pull ${image}`,
      "cat > /etc/systemd/system/mzforge-web.service <<'UNIT'",
      '[Unit]',
      'Description=mzforge front end (Django under gunicorn)',
      'After=docker.service',
      'Requires=docker.service',
      '[Service]',
      'Restart=always',
      'ExecStartPre=-/usr/bin/docker rm -f mzforge-web',
      [
        '/usr/bin/docker run --name mzforge-web --read-only --tmpfs /tmp',
        `-p ${APP_PORT}:${APP_PORT}`,
        `-e MZFORGE_ENVIRONMENT=${config.envName}`,
        `-e MZFORGE_UPLOADS_BUCKET=${props.uploads.bucketName}`,
        `-e MZFORGE_RESULTS_BUCKET=${props.results.bucketName}`,
        `-e MZFORGE_DATABASE_SECRET_ARN=${props.databaseSecret.secretArn}`,
        `-e AWS_REGION=${region}`,
        `-e MZFORGE_API_URL=https://api.${config.domainName}`,
        `-e MZFORGE_API_ADMIN_TOKEN_SECRET_ARN=${this.adminTokenSecret.secretArn}`,
        `-e DJANGO_SECRET_KEY_SECRET_ARN=${this.djangoSecretKey.secretArn}`,
        `-e DJANGO_ALLOWED_HOSTS=${hosts.join(',')}`,
        `-e DJANGO_CSRF_TRUSTED_ORIGINS=${hosts.map((h) => `https://${h}`).join(',')}`,
        image,
        `gunicorn mzforge_web.wsgi:application --bind 0.0.0.0:${APP_PORT} --workers 4 --access-logfile -`,
      ].join(' '),
      'ExecStop=/usr/bin/docker stop mzforge-web',
      '[Install]',
      'WantedBy=multi-user.target',
      'UNIT',
      'systemctl daemon-reload',
      'systemctl enable --now mzforge-web',
    );

    const role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'front-end instances: pull the image, use the buckets, read the database secret',
    });
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: new ec2.InstanceType(c.instanceType),
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
      securityGroup: props.instanceSecurityGroup,
      userData,
      requireImdsv2: true,
      httpPutResponseHopLimit: 2,
      detailedMonitoring: true,
      role,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(20, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }),
        },
      ],
    });

    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Instances', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate,
      minCapacity: c.minCapacity,
      maxCapacity: c.maxCapacity,
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(5),
      }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({ minInstancesInService: c.minCapacity }),
      notifications: [{ topic: props.alarmTopic }],
      defaultInstanceWarmup: Duration.minutes(3),
    });
    this.autoScalingGroup.scaleOnCpuUtilization('CpuScaling', {
      targetUtilizationPercent: c.targetCpuPercent,
    });
    this.alb.attachAutoScalingGroup(this.autoScalingGroup);

    props.repository.grantPull(role);
    grantBucket(role, role, props.uploads, 'readwrite');
    grantBucket(role, role, props.results, 'read');
    props.databaseSecret.grantRead(role);
    this.djangoSecretKey.grantRead(role);
    this.adminTokenSecret.grantRead(role);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken (docker login) does not support resource-level permissions',
    });
  }
}
