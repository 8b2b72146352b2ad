import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { EnvConfig } from '../config';
import { Database } from '../constructs/database';
import { Network } from '../constructs/network';
import { Storage } from '../constructs/storage';
import { environmentTags, tagComponent } from '../tags';

export interface StatefulStackProps extends StackProps {
  readonly config: EnvConfig;
}

/**
 * Everything that holds data or that data-holding resources depend on: the network, the buckets,
 * the container repositories and the database. Deployed (and protected) separately from compute.
 */
export class StatefulStack extends Stack {
  public readonly network: Network;
  public readonly storage: Storage;
  public readonly database: Database;
  private readonly config: EnvConfig;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, {
      ...props,
      tags: { ...environmentTags(props.config), ...props.tags },
      terminationProtection: props.config.retainStatefulResources,
    });
    const { config } = props;
    this.config = config;

    this.network = new Network(this, 'Network', { config });
    tagComponent(this.network, config, 'network');

    this.storage = new Storage(this, 'Storage', { config });
    tagComponent(this.storage, config, 'storage');

    this.database = new Database(this, 'Database', {
      config,
      vpc: this.network.vpc,
      securityGroup: this.network.databaseSg,
      rotationSecurityGroup: this.network.secretRotationSg,
    });
    tagComponent(this.database, config, 'database');
  }

  /** AZs come from the typed config: synth needs no lookup and no credentials. */
  get availabilityZones(): string[] {
    return this.config.availabilityZones;
  }
}
