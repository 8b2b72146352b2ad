import { CfnResource, Duration, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { KubectlV34Layer } from '@aws-cdk/lambda-layer-kubectl-v34';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';
import { DataBucketRef, grantBucket, objectsArn } from '../grants';
import { HEALTH_PATH } from './front-end';
import { API_NODE_PORT, APP_PORT, HTTPS_PORT } from './network';
import { PublicAlb } from './public-alb';

export interface AnalysisApiProps {
  readonly config: EnvConfig;
  readonly vpc: ec2.IVpc;
  readonly albSecurityGroup: ec2.ISecurityGroup;
  readonly nodeSecurityGroup: ec2.ISecurityGroup;
  readonly zone: route53.IHostedZone;
  readonly logBucket: s3.IBucket;
  readonly repository: ecr.IRepository;
  readonly uploads: DataBucketRef;
  readonly results: DataBucketRef;
  readonly stateMachine: sfn.IStateMachine;
  readonly alarmTopic: sns.ITopic;
  /** The RDS secret (host, port, username, password, dbname): the API builds its DATABASE_URL from it. */
  readonly databaseSecret: secretsmanager.ISecret;
}

export const API_NAMESPACE = 'mzforge';
export const API_NAME = 'analysis-api';

/**
 * The analysis API (FastAPI) on EKS.
 *
 * A private-endpoint cluster with self-managed Graviton (Bottlerocket) worker nodes in an Auto
 * Scaling group. The API runs as a Deployment with a horizontal pod autoscaler and is exposed as a
 * NodePort Service; the API ALB (HTTPS 443) forwards to that NodePort on the node group, so the
 * load balancer, its WAF association and its security groups all live in CloudFormation.
 * The pods' identity (EKS Pod Identity) may only start executions of the state machine and
 * read/write the uploads and results buckets.
 */
export class AnalysisApi extends Construct {
  public readonly cluster: eks.Cluster;
  public readonly nodes: autoscaling.AutoScalingGroup;
  public readonly alb: PublicAlb;
  public readonly serviceAccount: eks.ServiceAccount;
  public readonly manifest: eks.KubernetesManifest;

  constructor(scope: Construct, id: string, props: AnalysisApiProps) {
    super(scope, id);
    const { config } = props;
    const c = config.analysisApi;
    const clusterName = `mzforge-${config.envName}-api`;
    const privateSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    // The control-plane log group exists before the cluster so that it has our retention.
    const controlPlaneLogs = new logs.LogGroup(this, 'ControlPlaneLogs', {
      logGroupName: `/aws/eks/${clusterName}/cluster`,
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const kubectlSg = new ec2.SecurityGroup(this, 'KubectlSg', {
      vpc: props.vpc,
      description: 'kubectl provider function (applies the manifests)',
      allowAllOutbound: true,
    });
    const controlPlaneSg = new ec2.SecurityGroup(this, 'ControlPlaneSg', {
      vpc: props.vpc,
      description: 'EKS control-plane ENIs: the API server, from kubectl and the nodes',
      allowAllOutbound: false,
    });
    controlPlaneSg.addIngressRule(kubectlSg, ec2.Port.tcp(HTTPS_PORT), 'kubectl provider to the API server');
    controlPlaneSg.addIngressRule(props.nodeSecurityGroup, ec2.Port.tcp(HTTPS_PORT), 'worker nodes to the API server');
    controlPlaneSg.addEgressRule(props.nodeSecurityGroup, ec2.Port.tcpRange(1025, 65535), 'API server to kubelets and webhooks');
    controlPlaneSg.addEgressRule(props.nodeSecurityGroup, ec2.Port.tcp(HTTPS_PORT), 'API server to webhooks on 443');

    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName,
      version: eks.KubernetesVersion.of(c.kubernetesVersion),
      vpc: props.vpc,
      vpcSubnets: [privateSubnets],
      securityGroup: controlPlaneSg,
      endpointAccess: eks.EndpointAccess.PRIVATE,
      defaultCapacityType: eks.DefaultCapacityType.EC2,
      defaultCapacity: 0,
      secretsEncryptionKey: new kms.Key(this, 'SecretsKey', {
        description: `EKS secrets envelope key (${clusterName})`,
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
      clusterLogging: [
        eks.ClusterLoggingTypes.API,
        eks.ClusterLoggingTypes.AUDIT,
        eks.ClusterLoggingTypes.AUTHENTICATOR,
        eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
        eks.ClusterLoggingTypes.SCHEDULER,
      ],
      kubectlProviderOptions: {
        kubectlLayer: new KubectlV34Layer(this, 'KubectlLayer'),
        privateSubnets: props.vpc.selectSubnets(privateSubnets).subnets,
        securityGroups: [kubectlSg],
      },
    });
    this.cluster.node.addDependency(controlPlaneLogs);
    // The kubectl provider's log groups default to two years; give them the environment's retention.
    for (const child of this.cluster.kubectlProvider!.node.findAll()) {
      if (child instanceof logs.CfnLogGroup) child.retentionInDays = config.logRetention;
    }

    // ---- worker nodes: Graviton, Bottlerocket, NodePort reachable only from the API ALB ------
    // The ASG is built here rather than by `cluster.addAutoScalingGroupCapacity`, whose Bottlerocket
    // image is always x86_64: Graviton nodes need the arm64 variant of the AMI.
    this.nodes = new autoscaling.AutoScalingGroup(this, 'Nodes', {
      vpc: props.vpc,
      vpcSubnets: privateSubnets,
      instanceType: new ec2.InstanceType(c.nodeInstanceType),
      machineImage: ec2.MachineImage.fromSsmParameter(bottlerocketArm64Parameter(c.kubernetesVersion), {
        os: ec2.OperatingSystemType.UNKNOWN,
        // Bottlerocket reads TOML settings, not a shell script; aws-eks appends them below.
        userData: ec2.UserData.custom(''),
      }),
      minCapacity: c.minNodes,
      maxCapacity: c.maxNodes,
      requireImdsv2: true,
      blockDevices: [
        // Bottlerocket: OS volume and data volume, both encrypted.
        { deviceName: '/dev/xvda', volume: autoscaling.BlockDeviceVolume.ebs(4, { encrypted: true, volumeType: autoscaling.EbsDeviceVolumeType.GP3 }) },
        { deviceName: '/dev/xvdb', volume: autoscaling.BlockDeviceVolume.ebs(40, { encrypted: true, volumeType: autoscaling.EbsDeviceVolumeType.GP3 }) },
      ],
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(5),
      }),
      notifications: [{ topic: props.alarmTopic }],
    });
    this.cluster.connectAutoScalingGroupCapacity(this.nodes, { machineImageType: eks.MachineImageType.BOTTLEROCKET });
    this.nodes.scaleOnCpuUtilization('CpuScaling', { targetUtilizationPercent: 70 });
    // Self-managed nodes join through an EC2_LINUX access entry (the cluster uses API authentication).
    new eks.AccessEntry(this, 'NodeAccess', {
      cluster: this.cluster,
      principal: this.nodes.role.roleArn,
      accessEntryType: eks.AccessEntryType.EC2_LINUX,
      accessPolicies: [],
    });

    // HPA needs resource metrics.
    new eks.Addon(this, 'MetricsServer', { cluster: this.cluster, addonName: 'metrics-server' });

    this.alb = new PublicAlb(this, 'Alb', {
      vpc: props.vpc,
      securityGroup: props.albSecurityGroup,
      zone: props.zone,
      hostNames: [`api.${config.domainName}`],
      logBucket: props.logBucket,
      logPrefix: 'alb/analysis-api',
      targetPort: API_NODE_PORT,
      healthCheckPath: HEALTH_PATH,
    });
    this.alb.attachAutoScalingGroup(this.nodes);

    // ---- the API's pod identity ------------------------------------------------------------------
    const namespace = this.cluster.addManifest('Namespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: API_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    });
    this.serviceAccount = this.cluster.addServiceAccount('ServiceAccount', {
      name: API_NAME,
      namespace: API_NAMESPACE,
      identityType: eks.IdentityType.POD_IDENTITY,
    });
    this.serviceAccount.node.addDependency(namespace);
    props.stateMachine.grantStartExecution(this.serviceAccount);
    // Status reconciliation (DescribeExecution) and cancellation (StopExecution) of its executions.
    props.stateMachine.grantExecution(this.serviceAccount, 'states:DescribeExecution', 'states:StopExecution');
    const stack = Stack.of(this);
    const machineRef = JSON.stringify(stack.resolve(props.stateMachine.stateMachineArn));
    Validations.of(this.serviceAccount).acknowledge({
      id:
        `AwsSolutions-IAM5[Resource::arn:aws:states:${stack.region}:${stack.account}:execution:` +
        `{"Fn::Select":[6,{"Fn::Split":[":",${machineRef}]}]}:*]`,
      reason: 'execution names are analysis ids; the grant is limited to executions of the one analysis state machine',
    });
    grantBucket(this.serviceAccount, this.serviceAccount, props.uploads, 'readwrite');
    grantBucket(this.serviceAccount, this.serviceAccount, props.results, 'readwrite');
    // Deleting an upload removes its object; a cancelled analysis' partial results are removed.
    this.serviceAccount.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:DeleteObject'],
        resources: [objectsArn(props.uploads.bucketName), objectsArn(props.results.bucketName)],
      }),
    );
    props.databaseSecret.grantRead(this.serviceAccount);

    // ---- Deployment, Service, HPA, PDB ------------------------------------------------------------
    this.manifest = this.cluster.addManifest(
      'AnalysisApi',
      ...apiManifests({
        image: props.repository.repositoryUriForTag(c.imageTag),
        minReplicas: c.minReplicas,
        maxReplicas: c.maxReplicas,
        targetCpuPercent: c.targetCpuPercent,
        env: {
          MZFORGE_ENVIRONMENT: config.envName,
          MZFORGE_STATE_MACHINE_ARN: props.stateMachine.stateMachineArn,
          MZFORGE_UPLOADS_BUCKET: props.uploads.bucketName,
          MZFORGE_RESULTS_BUCKET: props.results.bucketName,
          // DATABASE_URL is built at start from this secret (never rendered into the manifest).
          MZFORGE_DATABASE_SECRET_ARN: props.databaseSecret.secretArn,
        },
      }),
    );
    this.manifest.node.addDependency(this.serviceAccount);

    // ---- acknowledgements --------------------------------------------------------------------------
    for (const policy of ['AmazonEKSWorkerNodePolicy', 'AmazonEKS_CNI_Policy', 'AmazonEC2ContainerRegistryReadOnly']) {
      Validations.of(this.nodes).acknowledge({
        id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
        reason: 'the AWS-maintained policies EKS documents for worker nodes (kubelet, VPC CNI, image pulls)',
      });
    }
    Validations.of(this.cluster).acknowledge(
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]',
        reason: 'the AWS-maintained EKS cluster service-role policy',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'CDK kubectl provider functions (custom resource framework) log with the basic execution policy',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason: 'the kubectl provider runs in the private subnets to reach the private cluster endpoint',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'kubectl provider: eks:DescribeCluster on its cluster plus ENI management, which needs "*"',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]',
        reason: 'aws-cdk-lib gives the kubectl provider read-only ECR access (Helm charts from ECR); it is not configurable',
      },
      {
        id:
          'AwsSolutions-IAM4[Policy::{"Fn::If":["AnalysisApiClusterKubectlProviderHandlerHasEcrPublicAAAAF0B8",{"Fn::Join":["",["arn:",' +
          '{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
        reason: 'aws-cdk-lib adds ECR Public read-only to the kubectl provider only in partitions that have ECR Public',
      },
      {
        id: 'AwsSolutions-L1',
        reason: 'the kubectl provider runtime is chosen by aws-cdk-lib to match the kubectl layer',
      },
      {
        id: 'CloudFormation-Validate::W9009',
        reason: 'aws-cdk-lib aws-eks-v2 renders EncryptionConfig.Resources (deprecated but still accepted) for secrets encryption',
      },
    );
    const kubectlHandler = this.cluster.kubectlProvider!.node.findChild('Handler').node.defaultChild as CfnResource;
    Validations.of(this.cluster).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(kubectlHandler)}.Arn>:*]`,
      reason: 'the custom-resource framework may invoke any version of the kubectl handler function',
    });
    Validations.of(this.nodes).acknowledge({
      id: '@aws-cdk/aws-ec2:ipv4IgnoreEgressRule',
      reason: 'nodes already allow all outbound traffic (image pulls, AWS APIs); the explicit egress rules aws-eks adds are redundant',
    });
  }
}

/** SSM parameter of the latest arm64 Bottlerocket AMI for a Kubernetes version. */
export function bottlerocketArm64Parameter(kubernetesVersion: string): string {
  return `/aws/service/bottlerocket/aws-k8s-${kubernetesVersion}/arm64/latest/image_id`;
}

export interface ApiManifestOptions {
  readonly image: string;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetCpuPercent: number;
  readonly env: Record<string, string>;
}

/** The API's liveness endpoint (`GET /healthz`: the process answers; python/python/mzforge/api/app.py). */
export const API_LIVENESS_PATH = '/healthz';

/** The read-only root file system leaves /tmp (an emptyDir) as the only writable place. */
export const API_RUNTIME_ENV: Record<string, string> = {
  MZFORGE_DATA_DIR: '/tmp/mzforge',
  MPLCONFIGDIR: '/tmp/matplotlib',
  HOME: '/tmp',
};

/** Kubernetes objects of the analysis API (plain data: unit-tested without a cluster). */
export function apiManifests(o: ApiManifestOptions): Record<string, any>[] {
  const labels = { 'app.kubernetes.io/name': API_NAME, 'app.kubernetes.io/part-of': 'mzforge' };
  const probe = (path: string, initialDelaySeconds: number) => ({
    httpGet: { path, port: APP_PORT },
    initialDelaySeconds,
    periodSeconds: 10,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: API_NAME, namespace: API_NAMESPACE, labels },
      spec: {
        replicas: o.minReplicas,
        selector: { matchLabels: labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: API_NAME,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'topology.kubernetes.io/zone',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: labels },
              },
            ],
            containers: [
              {
                name: 'api',
                image: o.image,
                // The image's entry point is `mzforge-api` (python/api/Dockerfile).
                command: ['mzforge-api'],
                args: ['serve', '--host', '0.0.0.0', '--port', String(APP_PORT)],
                ports: [{ name: 'http', containerPort: APP_PORT }],
                env: Object.entries({ ...API_RUNTIME_ENV, ...o.env }).map(([name, value]) => ({ name, value })),
                resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '1Gi' } },
                // Ready: the database and the buckets answer (`/readyz`, 503 otherwise), so a pod
                // leaves the Service while they do not. Alive: the process answers (`/healthz`):
                // a database fail-over must not restart every pod (the restart runs the migrations,
                // which wait for the database, into CrashLoopBackOff).
                readinessProbe: probe(HEALTH_PATH, 5),
                livenessProbe: probe(API_LIVENESS_PATH, 30),
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              },
            ],
            volumes: [{ name: 'tmp', emptyDir: {} }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: API_NAME, namespace: API_NAMESPACE, labels },
      spec: {
        type: 'NodePort',
        selector: labels,
        ports: [{ name: 'http', port: 80, targetPort: APP_PORT, nodePort: API_NODE_PORT, protocol: 'TCP' }],
      },
    },
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: API_NAME, namespace: API_NAMESPACE, labels },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: API_NAME },
        minReplicas: o.minReplicas,
        maxReplicas: o.maxReplicas,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: o.targetCpuPercent } } },
        ],
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: API_NAME, namespace: API_NAMESPACE, labels },
      spec: { minAvailable: 1, selector: { matchLabels: labels } },
    },
  ];
}
