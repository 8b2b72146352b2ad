/**
 * The cdk-nag gate: AwsSolutions finds nothing that is not acknowledged, and every
 * acknowledgement carries a real reason. (`npm run synth` enforces the same through the
 * policy-validation report; this test keeps the gate inside `npm test` too.)
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { EnvName } from '../lib/config';
import { stageFor, testApp } from './helpers';

interface Ack {
  path: string;
  id: string;
  reason: string;
}

function acknowledgements(root: IConstruct): Ack[] {
  const acks: Ack[] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        acks.push({ path: c.node.path, id, reason });
      }
    }
  }
  return acks;
}

describe.each(['dev', 'prod'] as EnvName[])('%s cdk-nag AwsSolutions', (env) => {
  const stage = stageFor(env);

  test('zero unacknowledged errors or warnings', () => {
    const report = new AwsSolutionsChecks().validateScope(stage);
    const findings = report.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath}`),
    );
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  test('the gate is live: an open security group is reported', () => {
    // A deliberately bad resource in a scratch app.
    const app = testApp();
    const stack = new Stack(app, 'Bad');
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-1', availabilityZones: ['a'], privateSubnetIds: ['s'] });
    const sg = new ec2.SecurityGroup(stack, 'Open', { vpc });
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((v) => v.ruleName)).toContain('AwsSolutions-EC23');
  });

  test('every acknowledgement gives a reason of substance', () => {
    const acks = acknowledgements(stage);
    expect(acks.length).toBeGreaterThan(10);
    for (const ack of acks) {
      expect({ id: ack.id, path: ack.path, reasonLength: ack.reason.trim().length >= 30 }).toEqual({
        id: ack.id,
        path: ack.path,
        reasonLength: true,
      });
    }
  });

  test('acknowledgements are scoped to resources, never to a whole stack or stage', () => {
    for (const ack of acknowledgements(stage)) {
      expect(ack.path.split('/').length).toBeGreaterThan(2);
    }
  });
});
