import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { EnvConfig, PROJECT, TAG_KEYS } from '../config';

export interface CostProps {
  readonly config: EnvConfig;
  readonly topic: sns.ITopic;
}

/**
 * A monthly cost budget for the environment, filtered by the cost-allocation tags, alerting by
 * e-mail and through the alert topic on actual and forecast spend.
 */
export class Cost extends Construct {
  public readonly budget: budgets.CfnBudget;

  constructor(scope: Construct, id: string, props: CostProps) {
    super(scope, id);
    const { config } = props;
    const b = config.budget;
    const subscribers = [
      { subscriptionType: 'EMAIL', address: config.alertEmail },
      { subscriptionType: 'SNS', address: props.topic.topicArn },
    ];
    const notification = (notificationType: 'ACTUAL' | 'FORECASTED', threshold: number) => ({
      notification: { notificationType, comparisonOperator: 'GREATER_THAN', threshold, thresholdType: 'PERCENTAGE' },
      subscribers,
    });

    this.budget = new budgets.CfnBudget(this, 'MonthlyBudget', {
      budget: {
        budgetName: `${PROJECT}-${config.envName}-monthly`,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: b.monthlyLimitUsd, unit: 'USD' },
        // Cost-allocation tags appear as "user:<key>$<value>" once activated in Billing. Each
        // environment has its own account, so the project tag selects this environment's spend
        // (values of one TagKeyValue filter are OR-ed, so the environment tag is not added here).
        costFilters: { TagKeyValue: [`user:${TAG_KEYS.project}$${PROJECT}`] },
      },
      // CfnBudget is not reached by Tags.of(); its tags are set here.
      resourceTags: [
        { key: TAG_KEYS.project, value: PROJECT },
        { key: TAG_KEYS.environment, value: config.envName },
        { key: TAG_KEYS.component, value: 'cost' },
      ],
      notificationsWithSubscribers: [
        ...b.actualThresholdsPercent.map((t) => notification('ACTUAL', t)),
        notification('FORECASTED', b.forecastThresholdPercent),
      ],
    });
  }
}
