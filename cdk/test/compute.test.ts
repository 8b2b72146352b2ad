import { Match } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS, bucketNames } from '../lib/config';
import { API_NAME, API_NAMESPACE, apiManifests } from '../lib/constructs/analysis-api';
import { graviton } from '../lib/constructs/batch-compute';
import { CfnResourceJson, flattenJoin, resourcesOf, templatesFor } from './helpers';

const dev = templatesFor('dev').stateless;
const prod = templatesFor('prod').stateless;

/** Graviton: the family name ends in `g` (plus optional d/n/e suffixes), e.g. m7g, c7gn, t4g. */
const GRAVITON = /^[a-z]+\d+g[a-z]*(\.[a-z0-9]+)?$/;

function manifests(t: typeof dev): any[] {
  return resourcesOf(t, 'Custom::AWSCDK-EKS-KubernetesResource').flatMap(([, r]) => JSON.parse(flattenJoin(r.Properties!.Manifest)));
}

function statementsOfRole(t: typeof dev, roleId: string): any[] {
  return resourcesOf(t, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties!.Roles as any[]).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement);
}

describe('Graviton everywhere', () => {
  test.each([
    ['dev', dev],
    ['prod', prod],
  ] as const)('%s: launch templates and Batch compute environments use Graviton types', (env, t) => {
    const types = resourcesOf(t, 'AWS::EC2::LaunchTemplate').map(([, lt]) => lt.Properties!.LaunchTemplateData.InstanceType);
    expect(types.sort()).toEqual([ENVIRONMENTS[env].analysisApi.nodeInstanceType, ENVIRONMENTS[env].frontEnd.instanceType].sort());
    for (const type of types) expect(type).toMatch(GRAVITON);
    for (const [, ce] of resourcesOf(t, 'AWS::Batch::ComputeEnvironment')) {
      for (const type of ce.Properties!.ComputeResources.InstanceTypes) expect(type).toMatch(GRAVITON);
    }
  });

  test('x86 families are refused by the config mapping', () => {
    expect(() => graviton('m5')).toThrow(/not a Graviton/);
    expect(graviton('c7gn')).toBe('c7gn');
  });
});

describe('AWS Batch', () => {
  test('Spot first, On-Demand fallback, in one queue', () => {
    const envs = resourcesOf(dev, 'AWS::Batch::ComputeEnvironment');
    const spot = envs.find(([, e]) => e.Properties!.ComputeResources.Type === 'SPOT')!;
    const onDemand = envs.find(([, e]) => e.Properties!.ComputeResources.Type === 'EC2')!;
    expect(spot[1].Properties!.Type).toBe('managed');
    expect(spot[1].Properties!.ComputeResources.AllocationStrategy).toBe('SPOT_PRICE_CAPACITY_OPTIMIZED');
    expect(spot[1].Properties!.ComputeResources.BidPercentage).toBe(ENVIRONMENTS.dev.batch.spotBidPercentage);
    expect(onDemand[1].Properties!.ComputeResources.MinvCpus).toBe(0);
    dev.hasResourceProperties('AWS::Batch::JobQueue', {
      ComputeEnvironmentOrder: [
        { ComputeEnvironment: { 'Fn::GetAtt': [spot[0], 'ComputeEnvironmentArn'] }, Order: 1 },
        { ComputeEnvironment: { 'Fn::GetAtt': [onDemand[0], 'ComputeEnvironmentArn'] }, Order: 2 },
      ],
    });
  });

  test('job definition: image asset, retries on Spot interruption (Host EC2*), timeout', () => {
    dev.hasResourceProperties('AWS::Batch::JobDefinition', {
      Type: 'container',
      ContainerProperties: Match.objectLike({
        Image: Match.objectLike({ 'Fn::Sub': Match.stringLikeRegexp('cdk-hnb659fds-container-assets') }),
        JobRoleArn: Match.anyValue(),
      }),
      RetryStrategy: {
        Attempts: ENVIRONMENTS.dev.batch.jobAttempts,
        EvaluateOnExit: Match.arrayWith([
          { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
          { Action: 'RETRY', OnExitCode: '75' },
          { Action: 'EXIT', OnExitCode: '*' },
        ]),
      },
      Timeout: { AttemptDurationSeconds: ENVIRONMENTS.dev.batch.jobTimeout.toSeconds() },
    });
  });

  test('the job role reads uploads and writes results (replacing stale ones), nothing else', () => {
    const [[, jd]] = resourcesOf(dev, 'AWS::Batch::JobDefinition');
    const roleId = jd.Properties!.ContainerProperties.JobRoleArn['Fn::GetAtt'][0];
    const actions = statementsOfRole(dev, roleId).flatMap((s) => [s.Action].flat());
    expect(new Set(actions)).toEqual(
      new Set(['s3:ListBucket', 's3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject', 'kms:Decrypt', 'kms:GenerateDataKey']),
    );
    const names = bucketNames(ENVIRONMENTS.dev);
    const puts = statementsOfRole(dev, roleId).filter((s) => [s.Action].flat().includes('s3:PutObject'));
    expect(puts.map((s) => s.Resource)).toEqual([`arn:aws:s3:::${names.results}/*`]);
  });
});

describe('front end (EC2 Auto Scaling)', () => {
  const [[ltId, lt]] = resourcesOf(dev, 'AWS::EC2::LaunchTemplate').filter(([id]) => id.startsWith('FrontEnd'));
  const [[, asg]] = resourcesOf(dev, 'AWS::AutoScaling::AutoScalingGroup').filter(([id]) => id.startsWith('FrontEnd'));

  test('launch template: IMDSv2, encrypted gp3 root volume, user data running gunicorn on 8000', () => {
    const data = lt.Properties!.LaunchTemplateData;
    expect(data.MetadataOptions.HttpTokens).toBe('required');
    expect(data.BlockDeviceMappings[0].Ebs).toEqual(expect.objectContaining({ Encrypted: true, VolumeType: 'gp3' }));
    const userData = flattenJoin(data.UserData['Fn::Base64']);
    expect(userData).toContain('gunicorn mzforge_web.wsgi:application --bind 0.0.0.0:8000');
    expect(userData).toContain('systemctl enable --now mzforge-web');
  });

  test('the site is told where the API is and reads its secrets with the instance role', () => {
    const userData = flattenJoin(lt.Properties!.LaunchTemplateData.UserData['Fn::Base64']);
    const domain = ENVIRONMENTS.dev.domainName;
    expect(userData).toContain(`-e MZFORGE_API_URL=https://api.${domain}`);
    expect(userData).toContain(`-e DJANGO_ALLOWED_HOSTS=www.${domain},${domain}`);
    expect(userData).toContain(`-e DJANGO_CSRF_TRUSTED_ORIGINS=https://www.${domain},https://${domain}`);
    const secrets = resourcesOf(dev, 'AWS::SecretsManager::Secret').filter(([id]) => id.startsWith('FrontEnd'));
    expect(secrets.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['FrontEndApiAdminToken', 'FrontEndDjangoSecretKey']);
    for (const [id] of secrets) {
      const env = id.includes('Admin') ? 'MZFORGE_API_ADMIN_TOKEN_SECRET_ARN' : 'DJANGO_SECRET_KEY_SECRET_ARN';
      expect(userData).toContain(`-e ${env}=<Ref:${id}>`);
    }
    const reads = resourcesOf(dev, 'AWS::IAM::Policy')
      .filter(([pid]) => pid.startsWith('FrontEndInstanceRole'))
      .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement)
      .filter((s: any) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
      .map((s: any) => JSON.stringify(s.Resource));
    for (const [id] of secrets) expect(reads.some((r) => r.includes(`"${id}"`))).toBe(true);
  });

  test('ASG: launch template, ELB health checks, private subnets, registered with the ALB', () => {
    const p = asg.Properties!;
    expect(p.LaunchTemplate.LaunchTemplateId).toEqual({ Ref: ltId });
    expect(p.HealthCheckType).toBe('ELB');
    expect(Number(p.MinSize)).toBe(ENVIRONMENTS.dev.frontEnd.minCapacity);
    expect(Number(p.MaxSize)).toBe(ENVIRONMENTS.dev.frontEnd.maxCapacity);
    expect(p.TargetGroupARNs).toHaveLength(1);
    expect(p.NotificationConfigurations).toHaveLength(1);
  });

  test('scales on CPU', () => {
    dev.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ASGAverageCPUUtilization' },
        TargetValue: ENVIRONMENTS.dev.frontEnd.targetCpuPercent,
      }),
    });
  });

  test('target group health-checks /readyz on the gunicorn port', () => {
    dev.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8000,
      Protocol: 'HTTP',
      HealthCheckPath: '/readyz',
    });
  });
});

describe('analysis API (EKS)', () => {
  test('private-endpoint cluster with control-plane logging and secrets encryption', () => {
    dev.hasResourceProperties('AWS::EKS::Cluster', {
      Version: ENVIRONMENTS.dev.analysisApi.kubernetesVersion,
      ResourcesVpcConfig: Match.objectLike({ EndpointPrivateAccess: true, EndpointPublicAccess: false }),
      Logging: { ClusterLogging: { EnabledTypes: Match.arrayWith([{ Type: 'api' }, { Type: 'audit' }]) } },
      EncryptionConfig: [Match.objectLike({ Resources: ['secrets'] })],
    });
  });

  test('auto-scaling Graviton Bottlerocket nodes join through an EC2_LINUX access entry', () => {
    const [[, asg]] = resourcesOf(dev, 'AWS::AutoScaling::AutoScalingGroup').filter(([id]) => id.startsWith('AnalysisApi'));
    expect(Number(asg.Properties!.MinSize)).toBe(ENVIRONMENTS.dev.analysisApi.minNodes);
    expect(Number(asg.Properties!.MaxSize)).toBe(ENVIRONMENTS.dev.analysisApi.maxNodes);
    expect(asg.Properties!.TargetGroupARNs).toHaveLength(1);
    dev.hasResourceProperties('AWS::EKS::AccessEntry', { Type: 'EC2_LINUX' });
    // The node image is the arm64 Bottlerocket AMI (and no x86_64 image is referenced at all).
    const params = Object.values(dev.toJSON().Parameters as Record<string, { Default?: string }>).map((p) => p.Default ?? '');
    expect(params).toContain(`/aws/service/bottlerocket/aws-k8s-${ENVIRONMENTS.dev.analysisApi.kubernetesVersion}/arm64/latest/image_id`);
    expect(params.filter((p) => p.includes('x86_64'))).toEqual([]);
  });

  test('the API Deployment, NodePort Service and HPA are applied as manifests', () => {
    const objects = manifests(dev);
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        `Namespace/${API_NAMESPACE}`,
        `ServiceAccount/${API_NAME}`,
        `Deployment/${API_NAME}`,
        `Service/${API_NAME}`,
        `HorizontalPodAutoscaler/${API_NAME}`,
        `PodDisruptionBudget/${API_NAME}`,
      ]),
    );
    const deployment = objects.find((o) => o.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8000 }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 8000 });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 8000 });
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    // The server the image runs: `mzforge-api serve` on the container port, writing only to /tmp.
    expect(container.command).toEqual(['mzforge-api']);
    expect(container.args).toEqual(['serve', '--host', '0.0.0.0', '--port', '8000']);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    const env = Object.fromEntries(container.env.map((e: { name: string; value: unknown }) => [e.name, e.value]));
    expect(Object.keys(env).sort()).toEqual(
      [
        'HOME', 'MPLCONFIGDIR', 'MZFORGE_DATABASE_SECRET_ARN', 'MZFORGE_DATA_DIR', 'MZFORGE_ENVIRONMENT',
        'MZFORGE_RESULTS_BUCKET', 'MZFORGE_STATE_MACHINE_ARN', 'MZFORGE_UPLOADS_BUCKET',
      ].sort(),
    );
    for (const dir of [env.MZFORGE_DATA_DIR, env.MPLCONFIGDIR, env.HOME]) expect(dir).toMatch(/^\/tmp/);
    expect(deployment.spec.template.spec.serviceAccountName).toBe(API_NAME);
    const service = objects.find((o) => o.kind === 'Service');
    expect(service.spec.type).toBe('NodePort');
    expect(service.spec.ports[0]).toEqual(expect.objectContaining({ targetPort: 8000, nodePort: 30080 }));
    const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
    expect(hpa.spec.minReplicas).toBe(ENVIRONMENTS.dev.analysisApi.minReplicas);
    expect(hpa.spec.maxReplicas).toBe(ENVIRONMENTS.dev.analysisApi.maxReplicas);
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: API_NAME });
  });

  test('prod runs more API replicas than dev', () => {
    const hpa = (t: typeof dev) => manifests(t).find((o) => o.kind === 'HorizontalPodAutoscaler');
    expect(hpa(prod).spec.maxReplicas).toBeGreaterThan(hpa(dev).spec.maxReplicas);
    expect(apiManifests({ image: 'x', minReplicas: 1, maxReplicas: 2, targetCpuPercent: 50, env: {} })).toHaveLength(4);
  });

  test('metrics-server (for the HPA) and the pod identity agent are installed as add-ons', () => {
    dev.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'metrics-server' });
    dev.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'eks-pod-identity-agent' });
  });

  test('the API pod identity may only start, describe and stop executions of the state machine, read/write its buckets and read the database secret', () => {
    const [[, assoc]] = resourcesOf(dev, 'AWS::EKS::PodIdentityAssociation');
    expect(assoc.Properties!.Namespace).toBe(API_NAMESPACE);
    expect(assoc.Properties!.ServiceAccount).toBe(API_NAME);
    const roleId = assoc.Properties!.RoleArn['Fn::GetAtt'][0];
    const role = dev.toJSON().Resources[roleId] as CfnResourceJson;
    expect(JSON.stringify(role.Properties!.AssumeRolePolicyDocument)).toContain('pods.eks.amazonaws.com');
    expect(role.Properties!.ManagedPolicyArns).toBeUndefined();
    const statements = statementsOfRole(dev, roleId);
    const names = bucketNames(ENVIRONMENTS.dev);
    const allowed = new Set([
      'states:StartExecution',
      'states:DescribeExecution',
      'states:StopExecution',
      's3:DeleteObject',
      'secretsmanager:GetSecretValue',
      'secretsmanager:DescribeSecret',
      's3:ListBucket',
      's3:GetObject',
      's3:PutObject',
      's3:AbortMultipartUpload',
      'kms:Decrypt',
      'kms:GenerateDataKey',
    ]);
    for (const s of statements) {
      expect(s.Effect).toBe('Allow');
      for (const action of [s.Action].flat()) expect(allowed).toContain(action);
      for (const resource of [s.Resource].flat()) {
        const r = typeof resource === 'string' ? resource : JSON.stringify(resource);
        const ok =
          r.includes('AnalysisStateMachine') ||
          r.includes(names.uploads) ||
          r.includes(names.results) ||
          r.includes('StorageDataKey') ||
          r.includes('DatabasePostgresSecret') ||
          r.includes('execution:');
        expect({ resource: r, ok }).toEqual({ resource: r, ok: true });
      }
    }
    expect(statements.find((s) => s.Action === 'states:StartExecution').Resource).toEqual({ Ref: expect.stringMatching(/AnalysisStateMachine/) });
  });
});
