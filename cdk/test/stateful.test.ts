import { Match, Template } from 'aws-cdk-lib/assertions';
import { stageFor } from './helpers';

const dev = Template.fromStack(stageFor('dev').stateful);
const prod = Template.fromStack(stageFor('prod').stateful);

describe('RDS PostgreSQL', () => {
  test.each([['dev', dev], ['prod', prod]])('%s: Multi-AZ, encrypted, private, backed up', (_env, t) => {
    t.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      MultiAZ: true,
      StorageEncrypted: true,
      PubliclyAccessible: false,
      BackupRetentionPeriod: Match.anyValue(),
    });
  });
});
