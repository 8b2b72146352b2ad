import { Match, Template } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS } from '../lib/config';
import { MANAGED_RULE_GROUPS } from '../lib/constructs/edge';
import { resourcesOf, stageFor, templatesFor } from './helpers';

const dev = templatesFor('dev').stateless;
const prod = templatesFor('prod').stateless;
const both = [
  ['dev', dev],
  ['prod', prod],
] as const;

describe('load balancers', () => {
  test.each(both)('%s: two internet-facing ALBs in the public subnets, dropping invalid headers, logging', (_env, t) => {
    const albs = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(albs).toHaveLength(2);
    for (const [, alb] of albs) {
      const p = alb.Properties!;
      expect(p.Scheme).toBe('internet-facing');
      expect(p.Type).toBe('application');
      const attrs = Object.fromEntries((p.LoadBalancerAttributes as { Key: string; Value: string }[]).map((a) => [a.Key, a.Value]));
      expect(attrs['routing.http.drop_invalid_header_fields.enabled']).toBe('true');
      expect(attrs['access_logs.s3.enabled']).toBe('true');
      for (const subnet of p.Subnets) expect(subnet['Fn::ImportValue']).toMatch(/LoadBalancersSubnet/);
    }
  });

  test.each(both)('%s: listeners are HTTPS on 443 with an ACM certificate, and there is no HTTP listener', (_env, t) => {
    const listeners = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::Listener');
    expect(listeners).toHaveLength(2);
    for (const [, l] of listeners) {
      expect(l.Properties!.Port).toBe(443);
      expect(l.Properties!.Protocol).toBe('HTTPS');
      expect(l.Properties!.Certificates).toEqual([{ CertificateArn: { Ref: expect.stringMatching(/Certificate/) } }]);
      expect(l.Properties!.SslPolicy).toMatch(/^ELBSecurityPolicy-TLS13/);
    }
  });
});

describe('Route 53 and ACM', () => {
  test.each(both)('%s: a hosted zone for the environment domain', (env, t) => {
    t.hasResourceProperties('AWS::Route53::HostedZone', { Name: `${ENVIRONMENTS[env].domainName}.` });
  });

  test('DNS-validated certificates for the front end and the API', () => {
    const d = ENVIRONMENTS.dev.domainName;
    dev.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: `www.${d}`,
      SubjectAlternativeNames: [d],
      ValidationMethod: 'DNS',
    });
    dev.hasResourceProperties('AWS::CertificateManager::Certificate', { DomainName: `api.${d}`, ValidationMethod: 'DNS' });
  });

  test('alias A records for www, the apex and api point at the ALBs', () => {
    const d = ENVIRONMENTS.dev.domainName;
    const records = resourcesOf(dev, 'AWS::Route53::RecordSet').map(([, r]) => r.Properties!);
    expect(records.map((r) => r.Name).sort()).toEqual([`${d}.`, `api.${d}.`, `www.${d}.`].sort());
    for (const r of records) {
      expect(r.Type).toBe('A');
      expect(r.AliasTarget.DNSName).toBeDefined();
    }
  });
});

describe('WAF and Shield', () => {
  test.each(both)('%s: a regional web ACL with the AWS managed rule groups and a per-IP rate limit', (env, t) => {
    const [[, acl]] = resourcesOf(t, 'AWS::WAFv2::WebACL');
    const p = acl.Properties!;
    expect(p.Scope).toBe('REGIONAL');
    expect(p.DefaultAction).toEqual({ Allow: {} });
    const managed = p.Rules.filter((r: any) => r.Statement.ManagedRuleGroupStatement).map((r: any) => r.Statement.ManagedRuleGroupStatement);
    expect(managed).toEqual(MANAGED_RULE_GROUPS.map((name) => ({ VendorName: 'AWS', Name: name })));
    const rate = p.Rules.find((r: any) => r.Statement.RateBasedStatement);
    expect(rate.Action).toEqual({ Block: {} });
    expect(rate.Statement.RateBasedStatement).toEqual(expect.objectContaining({ Limit: ENVIRONMENTS[env].wafRateLimitPer5Min, AggregateKeyType: 'IP' }));
    expect(new Set(p.Rules.map((r: any) => r.Priority)).size).toBe(p.Rules.length);
  });

  test.each(both)('%s: the web ACL is associated with both ALBs', (_env, t) => {
    const [[aclId]] = resourcesOf(t, 'AWS::WAFv2::WebACL');
    const albIds = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer').map(([id]) => id).sort();
    const associations = resourcesOf(t, 'AWS::WAFv2::WebACLAssociation').map(([, a]) => a.Properties!);
    expect(associations).toHaveLength(2);
    for (const a of associations) expect(a.WebACLArn).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] });
    expect(associations.map((a) => a.ResourceArn.Ref).sort()).toEqual(albIds);
  });

  test('WAF logs go to an aws-waf-logs- log group, with credentials redacted', () => {
    dev.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      LogDestinationConfigs: ['arn:aws:logs:eu-west-1:111111111111:log-group:aws-waf-logs-mzforge-dev'],
      RedactedFields: Match.arrayWith([{ SingleHeader: { Name: 'authorization' } }]),
    });
  });

  test('Shield Advanced is a configuration switch: off by default, protections for both ALBs and the zone when on', () => {
    expect(ENVIRONMENTS.dev.shieldAdvanced).toBe(false);
    dev.resourceCountIs('AWS::Shield::Protection', 0);
    const shielded = Template.fromStack(stageFor('prod', { shieldAdvanced: true }).stateless);
    const protections = resourcesOf(shielded, 'AWS::Shield::Protection').map(([, p]) => p.Properties!.ResourceArn);
    expect(protections).toHaveLength(3);
    const albIds = resourcesOf(shielded, 'AWS::ElasticLoadBalancingV2::LoadBalancer').map(([id]) => id);
    for (const id of albIds) expect(protections).toContainEqual({ Ref: id });
  });
});
