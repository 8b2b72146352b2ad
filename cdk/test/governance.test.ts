/** Cross-cutting requirements: tags, IAM wildcards, log retention, monitoring, budget. */
import { Template } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS, EnvName, PROJECT } from '../lib/config';
import { CfnResourceJson, resourcesOf, stageFor, templatesFor } from './helpers';

const envs: EnvName[] = ['dev', 'prod'];
const templates = Object.fromEntries(envs.map((env) => [env, templatesFor(env)])) as Record<EnvName, ReturnType<typeof templatesFor>>;
const allOf = (env: EnvName): [string, Template][] => [
  ['stateful', templates[env].stateful],
  ['stateless', templates[env].stateless],
];

/** Types that CloudFormation cannot tag (or that only exist inside another resource). */
const UNTAGGABLE = new Set([
  'AWS::CDK::Metadata',
  'AWS::EC2::Route',
  'AWS::EC2::SecurityGroupEgress',
  'AWS::EC2::SecurityGroupIngress',
  'AWS::EC2::SubnetRouteTableAssociation',
  'AWS::EC2::VPCGatewayAttachment',
  'AWS::IAM::InstanceProfile',
  'AWS::IAM::Policy',
  'AWS::Lambda::LayerVersion',
  'AWS::Lambda::Permission',
  'AWS::AutoScaling::ScalingPolicy',
  'AWS::Route53::RecordSet',
  'AWS::S3::BucketPolicy',
  'AWS::SecretsManager::ResourcePolicy',
  'AWS::SecretsManager::RotationSchedule',
  'AWS::SecretsManager::SecretTargetAttachment',
  'AWS::SNS::Subscription',
  'AWS::SNS::TopicPolicy',
  'AWS::WAFv2::LoggingConfiguration',
  'AWS::WAFv2::WebACLAssociation',
]);

/**
 * Resources that aws-cdk-lib creates from raw CfnResources inside its own custom-resource
 * providers (restricting the default security group, the EKS kubectl barrier), which Tags.of()
 * does not reach; they still get project/environment from the stack tags at deploy time.
 */
const CDK_INTERNAL = /^(CustomVpcRestrictDefaultSGCustomResourceProvider|AnalysisApiClusterKubectlReadyBarrier)|^Custom::/;

function tagsOf(r: CfnResourceJson): Record<string, unknown> | undefined {
  const p = r.Properties ?? {};
  const raw = p.Tags ?? p.HostedZoneTags ?? p.ResourceTags ?? p.LaunchTemplateData?.TagSpecifications?.[0]?.Tags;
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((t: any) => [t.Key ?? t.key, t.Value ?? t.value]));
  return raw;
}

describe.each(envs)('%s cost-allocation tags', (env) => {
  test.each(['stateful', 'stateless'])('every taggable resource of the %s stack has project, environment and component', (stackName) => {
    const t = allOf(env).find(([n]) => n === stackName)![1];
    let checked = 0;
    for (const [id, r] of Object.entries(t.toJSON().Resources as Record<string, CfnResourceJson>)) {
      if (UNTAGGABLE.has(r.Type) || CDK_INTERNAL.test(id) || CDK_INTERNAL.test(r.Type)) continue;
      const tags = tagsOf(r);
      expect({ id, type: r.Type, tags: tags && { project: tags.project, environment: tags.environment, hasComponent: typeof tags.component === 'string' } }).toEqual({
        id,
        type: r.Type,
        tags: { project: PROJECT, environment: env, hasComponent: true },
      });
      checked += 1;
    }
    expect(checked).toBeGreaterThan(20);
  });

  test('stacks carry project and environment tags (CloudFormation propagates them)', () => {
    const stage = stageFor(env);
    for (const stack of [stage.stateful, stage.stateless]) {
      expect(stack.tags.tagValues()).toEqual(expect.objectContaining({ project: PROJECT, environment: env }));
    }
  });

  test('component tags name the parts of the platform', () => {
    const components = new Set<string>();
    for (const [, t] of allOf(env)) {
      for (const r of Object.values(t.toJSON().Resources as Record<string, CfnResourceJson>)) {
        const c = tagsOf(r)?.component;
        if (typeof c === 'string') components.add(c);
      }
    }
    expect([...components].sort()).toEqual(
      ['analysis-api', 'batch', 'cost', 'database', 'edge', 'frontend', 'monitoring', 'network', 'processing', 'storage'].sort(),
    );
  });
});

/** Actions that AWS only grants on `Resource: "*"` (no resource-level permissions). */
const STAR_ONLY_ACTIONS = new Set([
  'ecr:GetAuthorizationToken',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
]);

describe.each(envs)('%s IAM', (env) => {
  const statements = allOf(env).flatMap(([stackName, t]) =>
    Object.entries(t.toJSON().Resources as Record<string, CfnResourceJson>).flatMap(([id, r]) => {
      const docs =
        r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy'
          ? [r.Properties!.PolicyDocument]
          : r.Type === 'AWS::IAM::Role'
            ? (r.Properties!.Policies ?? []).map((p: any) => p.PolicyDocument)
            : [];
      return docs.flatMap((d: any) => d.Statement.map((s: any) => ({ where: `${stackName}/${id}`, ...s })));
    }),
  );

  test('a Resource "*" appears only with actions that support no resource-level permissions', () => {
    const star = statements.filter((s) => [s.Resource].flat().includes('*'));
    expect(star.length).toBeGreaterThan(0);
    for (const s of star) {
      for (const action of [s.Action].flat()) {
        expect({ where: s.where, action, allowed: STAR_ONLY_ACTIONS.has(action) }).toEqual({ where: s.where, action, allowed: true });
      }
    }
  });

  test('no action is a service-wide wildcard', () => {
    for (const s of statements) {
      for (const action of [s.Action].flat()) expect(action).not.toMatch(/:\*$|^\*$/);
    }
  });

  test('no statement denies nothing: every Allow names actions and resources', () => {
    for (const s of statements.filter((x) => x.Effect === 'Allow')) {
      expect([s.Action].flat().length).toBeGreaterThan(0);
      expect([s.Resource].flat().length).toBeGreaterThan(0);
    }
  });

  test('one role per component function: no two Lambda functions share a role', () => {
    const roles = resourcesOf(templates[env].stateless, 'AWS::Lambda::Function').map(([, f]) => JSON.stringify(f.Properties!.Role));
    expect(new Set(roles).size).toBe(roles.length);
  });
});

describe.each(envs)('%s log retention', (env) => {
  test('every log group we create expires after the configured retention', () => {
    let count = 0;
    for (const [, t] of allOf(env)) {
      for (const [, lg] of resourcesOf(t, 'AWS::Logs::LogGroup')) {
        expect(lg.Properties!.RetentionInDays).toBe(ENVIRONMENTS[env].logRetention);
        count += 1;
      }
    }
    // flow logs, 2 RDS, 4 engine + trigger, state machine, Batch jobs, EKS control plane, WAF
    expect(count).toBeGreaterThanOrEqual(12);
  });

  test('our Lambda functions log to such a group (not to an unmanaged default one)', () => {
    const ours = resourcesOf(templates[env].stateless, 'AWS::Lambda::Function').filter(([id]) => id.startsWith('Processing'));
    expect(ours).toHaveLength(5);
    for (const [, f] of ours) expect(f.Properties!.LoggingConfig.LogGroup).toEqual({ Ref: expect.stringMatching(/Logs/) });
  });

  test('prod keeps logs longer than dev', () => {
    expect(ENVIRONMENTS.prod.logRetention).toBeGreaterThan(ENVIRONMENTS.dev.logRetention);
  });
});

describe('monitoring', () => {
  const t = templates.dev.stateless;

  test('the alert topic is KMS-encrypted, TLS-only and mails the on-call address', () => {
    const [[, topic]] = resourcesOf(t, 'AWS::SNS::Topic');
    expect(topic.Properties!.KmsMasterKeyId['Fn::GetAtt'][0]).toMatch(/TopicKey/);
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: ENVIRONMENTS.dev.alertEmail });
    const [[, policy]] = resourcesOf(t, 'AWS::SNS::TopicPolicy');
    expect(JSON.stringify(policy.Properties!.PolicyDocument)).toContain('aws:SecureTransport');
  });

  test('every alarm notifies the alert topic', () => {
    const [[topicId]] = resourcesOf(t, 'AWS::SNS::Topic');
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThanOrEqual(10);
    for (const [, a] of alarms) expect(a.Properties!.AlarmActions).toEqual([{ Ref: topicId }]);
    const metrics = alarms.map(([, a]) => {
      const m = a.Properties!.Metrics?.[0]?.MetricStat?.Metric ?? a.Properties!;
      return `${m.Namespace}/${m.MetricName}`;
    });
    expect(metrics).toEqual(
      expect.arrayContaining([
        'AWS/States/ExecutionsFailed',
        'AWS/Lambda/Errors',
        'AWS/States/ServiceIntegrationsFailed',
        'AWS/RDS/CPUUtilization',
        'AWS/ApplicationELB/HTTPCode_ELB_5XX_Count',
        'AWS/ApplicationELB/HTTPCode_Target_5XX_Count',
      ]),
    );
  });

  test('the dashboard shows executions, Lambda errors and duration, Batch jobs, RDS and ALB 5xx', () => {
    const [[, dashboard]] = resourcesOf(t, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.Properties!.DashboardBody);
    for (const title of ['Analysis executions', 'Lambda errors', 'Lambda duration', 'Batch jobs', 'RDS', 'ALB 5xx']) {
      expect(body).toContain(title);
    }
  });

  test('failed Batch jobs are announced on the topic', () => {
    const rules = resourcesOf(t, 'AWS::Events::Rule').map(([, r]) => r.Properties!);
    const batch = rules.find((r) => r.EventPattern.source[0] === 'aws.batch')!;
    expect(batch.EventPattern['detail-type']).toEqual(['Batch Job State Change']);
    expect(batch.EventPattern.detail.status).toEqual(['FAILED']);
    const [[topicId]] = resourcesOf(t, 'AWS::SNS::Topic');
    expect(batch.Targets[0].Arn).toEqual({ Ref: topicId });
  });
});

describe.each(envs)('%s budget', (env) => {
  test('a monthly cost budget filtered by the project tag, alerting on actual and forecast spend', () => {
    const b = ENVIRONMENTS[env].budget;
    const [[, budget]] = resourcesOf(templates[env].stateless, 'AWS::Budgets::Budget');
    const p = budget.Properties!;
    expect(p.Budget).toEqual(
      expect.objectContaining({
        BudgetType: 'COST',
        TimeUnit: 'MONTHLY',
        BudgetLimit: { Amount: b.monthlyLimitUsd, Unit: 'USD' },
        CostFilters: { TagKeyValue: [`user:project$${PROJECT}`] },
      }),
    );
    const notes = p.NotificationsWithSubscribers as any[];
    expect(notes.filter((n) => n.Notification.NotificationType === 'ACTUAL').map((n) => n.Notification.Threshold)).toEqual(b.actualThresholdsPercent);
    expect(notes.filter((n) => n.Notification.NotificationType === 'FORECASTED').map((n) => n.Notification.Threshold)).toEqual([b.forecastThresholdPercent]);
    for (const n of notes) {
      expect(n.Subscribers.map((s: any) => s.SubscriptionType).sort()).toEqual(['EMAIL', 'SNS']);
    }
  });
});
