import { Stack, StackProps } from 'aws-cdk-lib';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { AssetPaths, EnvConfig, bucketNames } from '../config';
import { AnalysisApi } from '../constructs/analysis-api';
import { BatchCompute } from '../constructs/batch-compute';
import { Cost } from '../constructs/cost';
import { Edge } from '../constructs/edge';
import { FrontEnd } from '../constructs/front-end';
import { Alerts, Monitoring } from '../constructs/monitoring';
import { Processing } from '../constructs/processing';
import { DataBucketRef } from '../grants';
import { environmentTags, tagComponent } from '../tags';
import { StatefulStack } from './stateful-stack';

export interface StatelessStackProps extends StackProps {
  readonly config: EnvConfig;
  readonly assets: AssetPaths;
  readonly stateful: StatefulStack;
}

/**
 * Compute and edge: the analysis workflow (Lambda, Step Functions, Batch), the analysis API on
 * EKS, the front end on EC2, DNS, certificates, WAF/Shield, monitoring and the budget. Holds no
 * data of its own: it can be destroyed and redeployed without losing anything.
 */
export class StatelessStack extends Stack {
  public readonly zone: route53.PublicHostedZone;
  public readonly alerts: Alerts;
  public readonly batch: BatchCompute;
  public readonly processing: Processing;
  public readonly analysisApi: AnalysisApi;
  public readonly frontEnd: FrontEnd;
  public readonly edge: Edge;
  public readonly monitoring: Monitoring;
  public readonly cost: Cost;
  private readonly config: EnvConfig;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, { ...props, tags: { ...environmentTags(props.config), ...props.tags } });
    const { config, assets, stateful } = props;
    this.config = config;
    const { network, storage, database } = stateful;
    const names = bucketNames(config);
    const uploads: DataBucketRef = { bucketName: names.uploads, key: storage.dataKey, purpose: 'uploads' };
    const results: DataBucketRef = { bucketName: names.results, key: storage.dataKey, purpose: 'results' };
    const databaseSecret = database.instance.secret!;

    this.zone = new route53.PublicHostedZone(this, 'Zone', {
      zoneName: config.domainName,
      comment: `mzforge ${config.envName}`,
    });
    tagComponent(this.zone, config, 'edge');

    this.alerts = new Alerts(this, 'Alerts', { config });
    tagComponent(this.alerts, config, 'monitoring');

    this.batch = new BatchCompute(this, 'Batch', {
      config,
      assets,
      vpc: network.vpc,
      securityGroup: network.batchSg,
      uploads,
      results,
    });
    tagComponent(this.batch, config, 'batch');

    this.processing = new Processing(this, 'Processing', {
      config,
      assets,
      vpc: network.vpc,
      securityGroup: network.lambdaSg,
      uploads,
      results,
      batch: this.batch,
    });
    tagComponent(this.processing, config, 'processing');

    this.analysisApi = new AnalysisApi(this, 'AnalysisApi', {
      config,
      vpc: network.vpc,
      albSecurityGroup: network.apiAlbSg,
      nodeSecurityGroup: network.apiNodeSg,
      zone: this.zone,
      logBucket: storage.logBucket,
      repository: storage.apiRepository,
      uploads,
      results,
      stateMachine: this.processing.stateMachine,
      alarmTopic: this.alerts.topic,
      databaseSecret,
    });
    tagComponent(this.analysisApi, config, 'analysis-api');

    this.frontEnd = new FrontEnd(this, 'FrontEnd', {
      config,
      vpc: network.vpc,
      albSecurityGroup: network.frontEndAlbSg,
      instanceSecurityGroup: network.frontEndInstanceSg,
      zone: this.zone,
      logBucket: storage.logBucket,
      repository: storage.frontEndRepository,
      uploads,
      results,
      databaseSecret,
      alarmTopic: this.alerts.topic,
    });
    tagComponent(this.frontEnd, config, 'frontend');

    const loadBalancers = {
      FrontEnd: this.frontEnd.alb.loadBalancer,
      AnalysisApi: this.analysisApi.alb.loadBalancer,
    };
    this.edge = new Edge(this, 'Edge', { config, zone: this.zone, loadBalancers });
    tagComponent(this.edge, config, 'edge');

    this.monitoring = new Monitoring(this, 'Monitoring', {
      config,
      topic: this.alerts.topic,
      stateMachine: this.processing.stateMachine,
      functions: [...Object.values(this.processing.functions), this.processing.trigger],
      batch: this.batch,
      database: database.instance,
      loadBalancers,
    });
    tagComponent(this.monitoring, config, 'monitoring');

    this.cost = new Cost(this, 'Cost', { config, topic: this.alerts.topic });
    tagComponent(this.cost, config, 'cost');
  }

  /** AZs come from the typed config: synth needs no lookup and no credentials. */
  get availabilityZones(): string[] {
    return this.config.availabilityZones;
  }
}
