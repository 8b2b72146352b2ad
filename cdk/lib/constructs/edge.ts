import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as shield from 'aws-cdk-lib/aws-shield';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';

/** AWS managed rule groups evaluated before the rate-based rule, in this order. */
export const MANAGED_RULE_GROUPS = [
  'AWSManagedRulesAmazonIpReputationList',
  'AWSManagedRulesCommonRuleSet',
  'AWSManagedRulesKnownBadInputsRuleSet',
  'AWSManagedRulesSQLiRuleSet',
] as const;

export interface EdgeProps {
  readonly config: EnvConfig;
  readonly zone: route53.IHostedZone;
  /** The internet-facing load balancers to protect (front end and analysis API). */
  readonly loadBalancers: Record<string, elbv2.IApplicationLoadBalancer>;
}

/**
 * What sits in front of the load balancers: a regional WAFv2 web ACL (AWS managed rule groups and
 * a per-IP rate limit) associated with every ALB, its logs, and optionally Shield Advanced
 * protections (Shield Standard is always on).
 */
export class Edge extends Construct {
  public readonly webAcl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: EdgeProps) {
    super(scope, id);
    const { config } = props;
    const metric = (name: string) => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName: `mzforge-${config.envName}-${name}`,
    });

    const managedRules: wafv2.CfnWebACL.RuleProperty[] = MANAGED_RULE_GROUPS.map((name, priority) => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: { managedRuleGroupStatement: { vendorName: 'AWS', name } },
      visibilityConfig: metric(name),
    }));

    this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name: `mzforge-${config.envName}`,
      description: 'front end and analysis API: AWS managed rules and a per-IP rate limit',
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: metric('web-acl'),
      rules: [
        ...managedRules,
        {
          name: 'RateLimitPerIp',
          priority: managedRules.length,
          action: { block: {} },
          statement: {
            rateBasedStatement: { limit: config.wafRateLimitPer5Min, aggregateKeyType: 'IP', evaluationWindowSec: 300 },
          },
          visibilityConfig: metric('rate-limit'),
        },
      ],
    });

    // WAF requires the log group name to start with aws-waf-logs-.
    const wafLogGroupName = `aws-waf-logs-mzforge-${config.envName}`;
    const wafLogs = new logs.LogGroup(this, 'WafLogs', {
      logGroupName: wafLogGroupName,
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const wafLogging = new wafv2.CfnLoggingConfiguration(this, 'WafLogging', {
      resourceArn: this.webAcl.attrArn,
      // WAF wants the log group ARN without the trailing ':*' of the CloudFormation attribute.
      logDestinationConfigs: [
        Stack.of(this).formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: wafLogGroupName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      redactedFields: [{ singleHeader: { Name: 'authorization' } }, { singleHeader: { Name: 'cookie' } }],
    });

    wafLogging.node.addDependency(wafLogs);

    for (const [name, lb] of Object.entries(props.loadBalancers)) {
      new wafv2.CfnWebACLAssociation(this, `WebAcl${name}`, {
        resourceArn: lb.loadBalancerArn,
        webAclArn: this.webAcl.attrArn,
      });
      if (config.shieldAdvanced) {
        new shield.CfnProtection(this, `Shield${name}`, {
          name: `mzforge-${config.envName}-${name}`,
          resourceArn: lb.loadBalancerArn,
        });
      }
    }
    if (config.shieldAdvanced) {
      new shield.CfnProtection(this, 'ShieldZone', {
        name: `mzforge-${config.envName}-zone`,
        resourceArn: `arn:aws:route53:::hostedzone/${props.zone.hostedZoneId}`,
      });
    }
  }
}
