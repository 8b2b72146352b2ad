/**
 * The traffic matrix: internet -> ALBs on 443 only; ALBs -> their own targets only;
 * compute -> RDS on 5432 only; nothing else open.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { EnvName } from '../lib/config';
import { resourcesOf, templatesFor } from './helpers';

interface Rule {
  direction: 'in' | 'out';
  /** The security group the rule belongs to (a name, see `nameOf`). */
  group: string;
  /** The other side: a security-group name or a CIDR. */
  peer: string;
  protocol: string;
  from: number | string;
  to: number | string;
}

/** Security groups of the stateful stack, named by their description. */
const NAMES: Record<string, string> = {
  'front-end ALB: HTTPS from the internet': 'frontEndAlb',
  'analysis API ALB: HTTPS from the internet': 'apiAlb',
  'front-end EC2 instances': 'frontEndInstances',
  'analysis API EKS worker nodes': 'apiNodes',
  'mzforge Lambda functions': 'lambda',
  'AWS Batch compute environments': 'batch',
  'database secret rotation function': 'secretRotation',
  'RDS PostgreSQL': 'database',
};
const DB_CLIENTS = ['frontEndInstances', 'apiNodes', 'secretRotation'];

function collectRules(env: EnvName): Rule[] {
  const { stateful, stateless } = templatesFor(env);
  const names = new Map<string, string>();
  for (const [stackName, t] of [
    ['stateful', stateful],
    ['stateless', stateless],
  ] as [string, Template][]) {
    for (const [id, sg] of resourcesOf(t, 'AWS::EC2::SecurityGroup')) {
      names.set(`${stackName}/${id}`, NAMES[sg.Properties!.GroupDescription] ?? `${stackName}/${id}`);
    }
  }
  const statefulIds = resourcesOf(stateful, 'AWS::EC2::SecurityGroup').map(([id]) => id);

  const ref = (stackName: string, value: any): string => {
    if (value?.['Fn::GetAtt']?.[1] === 'GroupId') return names.get(`${stackName}/${value['Fn::GetAtt'][0]}`)!;
    if (value?.['Fn::GetAtt']?.[1] === 'ClusterSecurityGroupId') return 'eksClusterSg';
    if (value?.['Fn::ImportValue']) {
      const exportName: string = value['Fn::ImportValue'];
      const id = statefulIds.find((sgId) => exportName.includes(`FnGetAtt${sgId}GroupId`));
      if (!id) throw new Error(`unknown imported security group ${exportName}`);
      return names.get(`stateful/${id}`)!;
    }
    throw new Error(`unexpected security group reference ${JSON.stringify(value)}`);
  };
  const port = (value: any): number | string => {
    if (typeof value === 'number') return value;
    if (value?.['Fn::GetAtt']?.[1] === 'Endpoint.Port') return 'databasePort';
    if (value === undefined) return 'all';
    return JSON.stringify(value);
  };

  const rules: Rule[] = [];
  for (const [stackName, t] of [
    ['stateful', stateful],
    ['stateless', stateless],
  ] as [string, Template][]) {
    for (const [id, sg] of resourcesOf(t, 'AWS::EC2::SecurityGroup')) {
      const group = names.get(`${stackName}/${id}`)!;
      for (const r of sg.Properties!.SecurityGroupIngress ?? []) {
        rules.push({ direction: 'in', group, peer: r.CidrIp ?? r.CidrIpv6 ?? ref(stackName, r.SourceSecurityGroupId), protocol: r.IpProtocol, from: port(r.FromPort), to: port(r.ToPort) });
      }
      for (const r of sg.Properties!.SecurityGroupEgress ?? []) {
        rules.push({ direction: 'out', group, peer: r.CidrIp ?? r.CidrIpv6 ?? ref(stackName, r.DestinationSecurityGroupId), protocol: r.IpProtocol, from: port(r.FromPort), to: port(r.ToPort) });
      }
    }
    for (const [, r] of resourcesOf(t, 'AWS::EC2::SecurityGroupIngress')) {
      const p = r.Properties!;
      rules.push({ direction: 'in', group: ref(stackName, p.GroupId), peer: p.CidrIp ?? p.CidrIpv6 ?? ref(stackName, p.SourceSecurityGroupId), protocol: p.IpProtocol, from: port(p.FromPort), to: port(p.ToPort) });
    }
    for (const [, r] of resourcesOf(t, 'AWS::EC2::SecurityGroupEgress')) {
      const p = r.Properties!;
      rules.push({ direction: 'out', group: ref(stackName, p.GroupId), peer: p.CidrIp ?? p.CidrIpv6 ?? ref(stackName, p.DestinationSecurityGroupId), protocol: p.IpProtocol, from: port(p.FromPort), to: port(p.ToPort) });
    }
  }
  return rules;
}

const isCidr = (peer: string) => /^[0-9a-f.:]+\/\d+$/.test(peer);

describe.each(['dev', 'prod'] as const)('%s security groups', (env) => {
  const rules = collectRules(env);
  const ingress = rules.filter((r) => r.direction === 'in');
  const egress = rules.filter((r) => r.direction === 'out');

  test('the only ingress from an address range is HTTPS from anywhere to the two ALBs', () => {
    const fromCidr = ingress.filter((r) => isCidr(r.peer));
    expect(fromCidr).toEqual(
      expect.arrayContaining([
        { direction: 'in', group: 'frontEndAlb', peer: '0.0.0.0/0', protocol: 'tcp', from: 443, to: 443 },
        { direction: 'in', group: 'apiAlb', peer: '0.0.0.0/0', protocol: 'tcp', from: 443, to: 443 },
      ]),
    );
    expect(fromCidr).toHaveLength(2);
  });

  test('ALBs accept nothing but 443 and reach only their own targets', () => {
    expect(ingress.filter((r) => r.group === 'frontEndAlb' || r.group === 'apiAlb').every((r) => r.from === 443 && r.to === 443)).toBe(true);
    expect(egress.filter((r) => r.group === 'frontEndAlb')).toEqual([
      expect.objectContaining({ peer: 'frontEndInstances', protocol: 'tcp', from: 8000, to: 8000 }),
    ]);
    expect(egress.filter((r) => r.group === 'apiAlb')).toEqual([
      expect.objectContaining({ peer: 'apiNodes', protocol: 'tcp', from: 30080, to: 30080 }),
    ]);
  });

  test('targets accept their ALB only (front end on 8000, API NodePort 30080)', () => {
    expect(ingress.filter((r) => r.group === 'frontEndInstances')).toEqual([
      expect.objectContaining({ peer: 'frontEndAlb', protocol: 'tcp', from: 8000, to: 8000 }),
    ]);
    expect(ingress.filter((r) => r.group === 'apiNodes')).toEqual([
      expect.objectContaining({ peer: 'apiAlb', protocol: 'tcp', from: 30080, to: 30080 }),
    ]);
  });

  test('the database accepts PostgreSQL (5432) from the compute security groups only', () => {
    const db = ingress.filter((r) => r.group === 'database');
    expect(db.length).toBeGreaterThanOrEqual(DB_CLIENTS.length);
    for (const r of db) {
      expect(DB_CLIENTS).toContain(r.peer);
      expect(r.protocol).toBe('tcp');
      // The rotation construct adds a rule on the instance's port attribute, which is 5432.
      expect([5432, 'databasePort']).toContain(r.from);
      expect(r.to).toBe(r.from);
    }
    expect(new Set(db.map((r) => r.peer))).toEqual(new Set(DB_CLIENTS));
    // The database opens no connection of its own.
    expect(egress.filter((r) => r.group === 'database' && r.peer !== '255.255.255.255/32')).toEqual([]);
  });

  test('Lambda, Batch and rotation functions accept no inbound traffic', () => {
    for (const group of ['lambda', 'batch', 'secretRotation']) {
      expect(ingress.filter((r) => r.group === group)).toEqual([]);
    }
  });

  test('EKS-internal rules stay between the cluster security groups', () => {
    const named = new Set(Object.values(NAMES));
    const internal = ingress.filter((r) => !named.has(r.group));
    expect(internal.length).toBeGreaterThan(0);
    for (const r of internal) expect(isCidr(r.peer)).toBe(false);
  });
});
