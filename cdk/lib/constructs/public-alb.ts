import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { HTTPS_PORT } from './network';

export interface PublicAlbProps {
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly zone: route53.IHostedZone;
  /** Host names (fully qualified) served by this ALB; the first is the certificate's name. */
  readonly hostNames: string[];
  readonly logBucket: s3.IBucket;
  readonly logPrefix: string;
  readonly targetPort: number;
  readonly healthCheckPath: string;
}

/**
 * An internet-facing ALB that only speaks HTTPS on 443 (no HTTP listener at all), with an ACM
 * certificate validated in the zone, alias records for its host names, access logs and one
 * target group on `targetPort`.
 */
export class PublicAlb extends Construct {
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  public readonly listener: elbv2.ApplicationListener;
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  public readonly certificate: acm.Certificate;

  constructor(scope: Construct, id: string, props: PublicAlbProps) {
    super(scope, id);
    const [primary, ...alternates] = props.hostNames;

    this.certificate = new acm.Certificate(this, 'Certificate', {
      domainName: primary,
      subjectAlternativeNames: alternates.length ? alternates : undefined,
      validation: acm.CertificateValidation.fromDns(props.zone),
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'Alb', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      internetFacing: true,
      securityGroup: props.securityGroup,
      dropInvalidHeaderFields: true,
      http2Enabled: true,
      idleTimeout: Duration.seconds(60),
    });
    this.loadBalancer.logAccessLogs(props.logBucket, props.logPrefix);

    this.targetGroup = new elbv2.ApplicationTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      port: props.targetPort,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.INSTANCE,
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        path: props.healthCheckPath,
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });

    this.listener = this.loadBalancer.addListener('Https', {
      port: HTTPS_PORT,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [this.certificate],
      // Security-group rules are declared in Network; do not let the listener open its own.
      open: false,
      defaultTargetGroups: [this.targetGroup],
    });

    props.hostNames.forEach((name, i) => {
      new route53.ARecord(this, `Alias${i}`, {
        zone: props.zone,
        recordName: name,
        target: route53.RecordTarget.fromAlias(new route53targets.LoadBalancerTarget(this.loadBalancer)),
      });
    });
  }

  /**
   * Registers an Auto Scaling group as the target. Unlike `targetGroup.addTarget(asg)` this adds
   * no security-group rules: the ALB -> target rules are declared once, in Network (and the ALB's
   * security group lives in the stateful stack, which must not reference compute).
   */
  public attachAutoScalingGroup(asg: autoscaling.AutoScalingGroup): void {
    const cfn = asg.node.defaultChild as autoscaling.CfnAutoScalingGroup;
    cfn.addPropertyOverride('TargetGroupARNs', [this.targetGroup.targetGroupArn]);
    asg.node.addDependency(this.listener);
  }
}
