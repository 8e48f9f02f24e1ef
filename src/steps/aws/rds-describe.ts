// aws.rds.describe: read a cluster's or instance's endpoints, roles and status so later steps can
// use them (${steps.rds.outputs.writerEndpoint} as the flip's value). Read-only.
import { z } from 'zod';
import { defineKind } from '../../engine/types.js';
import { asRecord, callOpts, literal } from './common.js';
import { oneTarget, rds, rdsIam, Target, targetLabel } from './rds.js';

const Params = z.lazy(() => z.object(Target).strict().superRefine(oneTarget));
type P = z.infer<typeof Params>;

type Outputs = {
  id: string;
  arn: string;
  status: string;
  engine: string;
  engineVersion: string;
  port: number;
  /** Cluster endpoint (writer), or the instance's own endpoint unless it is a read replica. */
  writerEndpoint: string;
  /** Cluster reader endpoint, or the instance's endpoint when it is a read replica. */
  readerEndpoint: string;
  /** Instance id of the cluster's writer (an instance: itself unless it is a replica). */
  writerInstance: string;
  readerInstances: string[];
  role: 'cluster' | 'writer' | 'reader';
  /** The cluster's or the instance's own endpoint. */
  endpoint: string;
  /** The Aurora cluster the instance belongs to ('' for RDS); the cluster's own id for a cluster. */
  clusterId: string;
  /** VPC security groups (VpcSecurityGroups): e.g. keepOpen.groupIds of the fence. */
  securityGroupIds: string[];
};

export const rdsDescribe = defineKind<P, undefined, Outputs>({
  kind: 'aws.rds.describe',
  summary: 'read an RDS/Aurora cluster or instance: endpoints, writer/reader roles, status, engine',
  params: Params,
  readOnly: true,
  outputs: [
    'id',
    'arn',
    'status',
    'engine',
    'engineVersion',
    'port',
    'writerEndpoint',
    'readerEndpoint',
    'writerInstance',
    'readerInstances',
    'role',
    'endpoint',
    'clusterId',
    'securityGroupIds',
  ],
  iam(p) {
    const r = asRecord(p);
    if (r.instance === undefined) return rdsIam(p);
    // An Aurora instance's role comes from its cluster, which the runbook does not name.
    const region = literal(r.region) ?? '*';
    return [
      ...rdsIam(p),
      { mode: 'read', actions: ['rds:DescribeDBClusters'], resources: [`arn:aws:rds:${region}:*:cluster:*`] },
    ];
  },
  describe: (p) => [`would read the endpoints, status and security groups of RDS ${targetLabel(p)}`],
  async apply(ctx, p) {
    const api = await rds(ctx, p.region);
    if (p.cluster) {
      const c = await api.cluster(p.cluster, callOpts(ctx));
      const writer = c.members.find((m) => m.writer)?.instanceId ?? '';
      ctx.log(
        `cluster ${c.id}: ${c.status}, ${c.engine} ${c.engineVersion ?? ''}, writer ${writer || '(none)'} at ${c.endpoint ?? '?'}`,
      );
      return {
        id: c.id,
        arn: c.arn ?? '',
        status: c.status,
        engine: c.engine,
        engineVersion: c.engineVersion ?? '',
        port: c.port ?? 0,
        writerEndpoint: c.endpoint ?? '',
        readerEndpoint: c.readerEndpoint ?? '',
        writerInstance: writer,
        readerInstances: c.members
          .filter((m) => !m.writer)
          .map((m) => m.instanceId)
          .sort(),
        role: 'cluster',
        endpoint: c.endpoint ?? '',
        clusterId: c.id,
        securityGroupIds: c.securityGroupIds,
      };
    }
    const i = await api.instance(p.instance!, callOpts(ctx));
    const common = { endpoint: i.endpoint ?? '', securityGroupIds: i.securityGroupIds };
    if (i.clusterId) {
      // An Aurora instance: its role is its cluster membership, and writes go to the cluster endpoint.
      const c = await api.cluster(i.clusterId, callOpts(ctx));
      const writer = c.members.find((m) => m.writer)?.instanceId ?? '';
      const role = writer === i.id ? 'writer' : 'reader';
      ctx.log(`instance ${i.id}: ${i.status}, ${role} of cluster ${c.id} (writer ${writer || '(none)'})`);
      return {
        id: i.id,
        arn: i.arn ?? '',
        status: i.status,
        engine: i.engine,
        engineVersion: i.engineVersion ?? '',
        port: i.port ?? c.port ?? 0,
        writerEndpoint: c.endpoint ?? '',
        readerEndpoint: role === 'reader' ? (i.endpoint ?? '') : (c.readerEndpoint ?? ''),
        writerInstance: writer,
        readerInstances: c.members
          .filter((m) => !m.writer)
          .map((m) => m.instanceId)
          .sort(),
        role,
        clusterId: c.id,
        ...common,
      };
    }
    const replica = !!i.replicaSourceId;
    return {
      id: i.id,
      arn: i.arn ?? '',
      status: i.status,
      engine: i.engine,
      engineVersion: i.engineVersion ?? '',
      port: i.port ?? 0,
      writerEndpoint: replica ? '' : (i.endpoint ?? ''),
      readerEndpoint: replica ? (i.endpoint ?? '') : '',
      writerInstance: replica ? (i.replicaSourceId ?? '') : i.id,
      readerInstances: replica ? [i.id] : [],
      role: replica ? 'reader' : 'writer',
      clusterId: '',
      ...common,
    };
  },
});
