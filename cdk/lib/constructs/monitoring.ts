import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';
import { BatchCompute } from './batch-compute';

export interface AlertsProps {
  readonly config: EnvConfig;
}

/** The SNS topic every alarm, Auto Scaling notice, failed Batch job and budget alert goes to. */
export class Alerts extends Construct {
  public readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlertsProps) {
    super(scope, id);
    const key = new kms.Key(this, 'TopicKey', {
      description: `mzforge ${props.config.envName} alert topic`,
      enableKeyRotation: true,
    });
    // CloudWatch alarms, EventBridge and AWS Budgets publish to the encrypted topic.
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com', 'budgets.amazonaws.com']) {
      key.grant(new iam.ServicePrincipal(service), 'kms:Decrypt', 'kms:GenerateDataKey');
    }
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `mzforge ${props.config.envName} alerts`,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.grantPublish(new iam.ServicePrincipal('budgets.amazonaws.com'));
    this.topic.addSubscription(new subscriptions.EmailSubscription(props.config.alertEmail));
  }
}

export interface MonitoringProps {
  readonly config: EnvConfig;
  readonly topic: sns.ITopic;
  readonly stateMachine: sfn.StateMachine;
  readonly functions: lambda.IFunction[];
  readonly batch: BatchCompute;
  readonly database: rds.IDatabaseInstance;
  readonly loadBalancers: Record<string, elbv2.ApplicationLoadBalancer>;
}

/**
 * One dashboard (executions, Lambda errors and duration, Batch jobs, RDS, ALB 5xx) and the alarms
 * that page through the alert topic.
 */
export class Monitoring extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config } = props;
    const action = new cwActions.SnsAction(props.topic);
    const alarm = (alarmId: string, metric: cloudwatch.IMetric, threshold: number, description: string,
      comparison = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) => {
      const a = new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: comparison,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };
    const period = Duration.minutes(5);

    // Step Functions
    const sm = props.stateMachine;
    const executionsFailed = sm.metricFailed({ period });
    alarm('ExecutionsFailed', executionsFailed, 1, 'an analysis execution failed');
    alarm('ExecutionsTimedOut', sm.metricTimedOut({ period }), 1, 'an analysis execution timed out');

    // Lambda
    for (const fn of props.functions) {
      const short = fn.node.id;
      alarm(`${short}Errors`, fn.metricErrors({ period }), 1, `${short} raised errors`);
      alarm(`${short}Throttles`, fn.metricThrottles({ period }), 5, `${short} is throttled`);
    }

    // Batch: the state machine's Batch integration metrics count jobs; failed jobs also notify.
    const batchMetric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/States',
        metricName,
        dimensionsMap: { ServiceIntegrationResourceArn: `arn:aws:states:::batch:submitJob.sync` },
        statistic: 'Sum',
        period,
      });
    alarm('BatchJobsFailed', batchMetric('ServiceIntegrationsFailed'), 1, 'a Batch analysis job failed');
    new events.Rule(this, 'BatchJobFailed', {
      description: 'a job in the mzforge queue failed',
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { status: ['FAILED'], jobQueue: [props.batch.jobQueue.jobQueueArn] },
      },
      targets: [new targets.SnsTopic(props.topic)],
    });

    // RDS
    const db = props.database;
    alarm('DatabaseCpuHigh', db.metricCPUUtilization({ period }), 80, 'database CPU above 80%');
    alarm('DatabaseStorageLow', db.metricFreeStorageSpace({ period }), 5 * 1024 ** 3,
      'database free storage below 5 GiB', cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD);

    // ALBs
    const alb5xx: cloudwatch.IMetric[] = [];
    for (const [name, lb] of Object.entries(props.loadBalancers)) {
      const elb5xx = lb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period, label: `${name} ELB 5xx` });
      const target5xx = lb.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period, label: `${name} target 5xx` });
      alarm(`${name}Alb5xx`, elb5xx, 10, `${name} ALB returned 5xx`);
      alarm(`${name}Target5xx`, target5xx, 25, `${name} targets returned 5xx`);
      alb5xx.push(elb5xx, target5xx);
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `mzforge-${config.envName}`,
      defaultInterval: Duration.hours(24),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Analysis executions',
        left: [sm.metricStarted({ period }), sm.metricSucceeded({ period }), executionsFailed, sm.metricTimedOut({ period })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Batch jobs (state machine integration)',
        left: [batchMetric('ServiceIntegrationsScheduled'), batchMetric('ServiceIntegrationsSucceeded'), batchMetric('ServiceIntegrationsFailed')],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lambda errors',
        left: props.functions.map((fn) => fn.metricErrors({ period, label: fn.node.id })),
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda duration (p90)',
        left: props.functions.map((fn) => fn.metricDuration({ period, statistic: 'p90', label: fn.node.id })),
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'RDS',
        left: [db.metricCPUUtilization({ period }), db.metricDatabaseConnections({ period })],
        right: [db.metricFreeStorageSpace({ period })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({ title: 'ALB 5xx', left: alb5xx, width: 12 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
    );
  }
}
