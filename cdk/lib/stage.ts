import { Stage, StageProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AssetPaths, EnvConfig } from './config';
import { StatefulStack } from './stacks/stateful-stack';
import { StatelessStack } from './stacks/stateless-stack';

export interface MzforgeStageProps extends StageProps {
  readonly config: EnvConfig;
  readonly assets: AssetPaths;
}

/** One environment of the platform: the stateful stack and the stateless stack that uses it. */
export class MzforgeStage extends Stage {
  public readonly stateful: StatefulStack;
  public readonly stateless: StatelessStack;

  constructor(scope: Construct, id: string, props: MzforgeStageProps) {
    const { config } = props;
    super(scope, id, { ...props, env: { account: config.account, region: config.region } });

    this.stateful = new StatefulStack(this, 'Stateful', {
      config,
      stackName: `mzforge-${config.envName}-stateful`,
      description: `mzforge ${config.envName}: network, buckets, repositories, database`,
    });
    this.stateless = new StatelessStack(this, 'Stateless', {
      config,
      assets: props.assets,
      stateful: this.stateful,
      stackName: `mzforge-${config.envName}-stateless`,
      description: `mzforge ${config.envName}: Lambda, Step Functions, Batch, EKS, front end, WAF, DNS, monitoring`,
    });
    this.stateless.addStackDependency(this.stateful);
  }
}
