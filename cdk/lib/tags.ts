import { Tags } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { Component, EnvConfig, PROJECT, TAG_KEYS } from './config';

/** The tags every stack of an environment carries (CloudFormation propagates them to resources). */
export function environmentTags(config: EnvConfig): Record<string, string> {
  return { [TAG_KEYS.project]: PROJECT, [TAG_KEYS.environment]: config.envName };
}

/** Tags a construct subtree with project, environment and component (cost allocation). */
export function tagComponent(scope: IConstruct, config: EnvConfig, component: Component): void {
  for (const [key, value] of Object.entries(environmentTags(config))) {
    Tags.of(scope).add(key, value);
  }
  Tags.of(scope).add(TAG_KEYS.component, component);
}
