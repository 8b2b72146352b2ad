import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';

/** Port the front end (gunicorn) and the analysis API container listen on. */
export const APP_PORT = 8000;
/** NodePort of the analysis API Service on every EKS worker node (the API ALB's target port). */
export const API_NODE_PORT = 30080;
export const POSTGRES_PORT = 5432;
export const HTTPS_PORT = 443;

export interface NetworkProps {
  readonly config: EnvConfig;
}

/**
 * The VPC and every security group of the platform.
 *
 * Security groups are declared together so that the whole traffic matrix reads in one place:
 * internet -> ALBs on 443 only; each ALB -> its own targets only; compute -> RDS on 5432 only.
 */
export class Network extends Construct {
  public readonly vpc: ec2.Vpc;
  public readonly frontEndAlbSg: ec2.SecurityGroup;
  public readonly apiAlbSg: ec2.SecurityGroup;
  public readonly frontEndInstanceSg: ec2.SecurityGroup;
  public readonly apiNodeSg: ec2.SecurityGroup;
  public readonly lambdaSg: ec2.SecurityGroup;
  public readonly batchSg: ec2.SecurityGroup;
  public readonly databaseSg: ec2.SecurityGroup;
  public readonly secretRotationSg: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { config } = props;

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(config.vpcCidr),
      availabilityZones: config.availabilityZones,
      natGateways: config.natGateways,
      subnetConfiguration: [
        // Only the load balancers (and the NAT gateways) live in public subnets.
        { name: 'LoadBalancers', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'Compute', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: 'Database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        // Uploads/results traffic goes through the gateway endpoint, never through NAT.
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
    });

    Validations.of(this.vpc).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason: 'AZs are pinned per environment in the typed config so that synth needs no account lookup',
    });

    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    const sg = (sgId: string, description: string, allowAllOutbound: boolean) =>
      new ec2.SecurityGroup(this, sgId, { vpc: this.vpc, description, allowAllOutbound });

    this.frontEndAlbSg = sg('FrontEndAlbSg', 'front-end ALB: HTTPS from the internet', false);
    this.apiAlbSg = sg('ApiAlbSg', 'analysis API ALB: HTTPS from the internet', false);
    // Compute needs outbound HTTPS to AWS APIs (through NAT or the S3 endpoint); nothing inbound
    // except from its own load balancer.
    this.frontEndInstanceSg = sg('FrontEndInstanceSg', 'front-end EC2 instances', true);
    this.apiNodeSg = sg('ApiNodeSg', 'analysis API EKS worker nodes', true);
    this.lambdaSg = sg('LambdaSg', 'mzforge Lambda functions', true);
    this.batchSg = sg('BatchSg', 'AWS Batch compute environments', true);
    this.secretRotationSg = sg('SecretRotationSg', 'database secret rotation function', true);
    this.databaseSg = sg('DatabaseSg', 'RDS PostgreSQL', false);

    const anyIpv4 = ec2.Peer.anyIpv4();
    this.frontEndAlbSg.addIngressRule(anyIpv4, ec2.Port.tcp(HTTPS_PORT), 'HTTPS from the internet');
    this.apiAlbSg.addIngressRule(anyIpv4, ec2.Port.tcp(HTTPS_PORT), 'HTTPS from the internet');
    for (const albSg of [this.frontEndAlbSg, this.apiAlbSg]) {
      Validations.of(albSg).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'internet-facing ALB: HTTPS (443 only) from anywhere is its purpose; WAF and Shield sit in front of it',
      });
    }

    // Each ALB reaches only its own targets (ingress on the target, egress on the ALB).
    this.frontEndInstanceSg.connections.allowFrom(this.frontEndAlbSg, ec2.Port.tcp(APP_PORT), 'front-end ALB to gunicorn');
    this.apiNodeSg.connections.allowFrom(this.apiAlbSg, ec2.Port.tcp(API_NODE_PORT), 'API ALB to the API NodePort');

    // Compute -> database on 5432 only. The pipeline's Lambdas do not use the database (the
    // analysis API reconciles status from S3), so they cannot reach it.
    for (const [source, why] of [
      [this.frontEndInstanceSg, 'front end'],
      [this.apiNodeSg, 'analysis API'],
      [this.secretRotationSg, 'secret rotation'],
    ] as const) {
      this.databaseSg.connections.allowFrom(source, ec2.Port.tcp(POSTGRES_PORT), `PostgreSQL from ${why}`);
    }
  }

  /** The security groups allowed to reach the database (for tests and documentation). */
  public get databaseClients(): ec2.SecurityGroup[] {
    return [this.frontEndInstanceSg, this.apiNodeSg, this.secretRotationSg];
  }
}
