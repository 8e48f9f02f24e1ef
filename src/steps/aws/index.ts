import type { StepKind } from '../../engine/types.js';
import { rdsDescribe } from './rds-describe.js';
import { rdsWait } from './rds-wait.js';
import { routeFlip } from './route53-flip.js';
import { routeSetTtl } from './route53-set-ttl.js';
import { securityGroupRestore } from './security-group-restore.js';
import { securityGroupRestrict } from './security-group-restrict.js';

export const awsKinds: StepKind[] = [
  securityGroupRestrict,
  securityGroupRestore,
  routeSetTtl,
  routeFlip,
  rdsDescribe,
  rdsWait,
];
