// Shared by aws.rds.describe and aws.rds.wait: which cluster or instance, and its IAM needs.
import { z } from 'zod';
import { type RdsAdapter, rdsAdapter } from '../../adapters/aws.js';
import type { StepContext } from '../../engine/types.js';
import { type AwsIamNeed, asRecord, literal, Region } from './common.js';

export const Target = {
  cluster: z.string().min(1).optional().describe('DB cluster identifier (Aurora)'),
  instance: z.string().min(1).optional().describe('DB instance identifier (RDS, or one Aurora instance)'),
  region: Region,
};

export function oneTarget(
  p: { cluster?: string | undefined; instance?: string | undefined },
  c: z.RefinementCtx,
): void {
  if ((p.cluster === undefined) === (p.instance === undefined))
    c.addIssue({ code: 'custom', path: ['cluster'], message: 'set exactly one of cluster and instance' });
}

export function rds(ctx: StepContext, region: string | undefined): Promise<RdsAdapter> {
  return ctx.adapters.use(rdsAdapter, region);
}

export function targetLabel(p: { cluster?: string | undefined; instance?: string | undefined }): string {
  return p.cluster ? `cluster ${p.cluster}` : `instance ${p.instance}`;
}

export function rdsIam(p: unknown): AwsIamNeed[] {
  const r = asRecord(p);
  const region = literal(r.region) ?? '*';
  const cluster = literal(r.cluster);
  const instance = literal(r.instance);
  if (r.cluster !== undefined)
    return [
      {
        mode: 'read',
        actions: ['rds:DescribeDBClusters'],
        resources: [cluster ? `arn:aws:rds:${region}:*:cluster:${cluster}` : '*'],
      },
      // Member instances are named by the cluster, not the runbook.
      { mode: 'read', actions: ['rds:DescribeDBInstances'], resources: [`arn:aws:rds:${region}:*:db:*`] },
    ];
  return [
    {
      mode: 'read',
      actions: ['rds:DescribeDBInstances'],
      resources: [instance ? `arn:aws:rds:${region}:*:db:${instance}` : '*'],
    },
  ];
}
