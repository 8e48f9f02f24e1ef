// RDS describe subset over the AWS query protocol: unlike EC2, results sit in an <ActionResult>
// wrapper with PascalCase names, and errors come as <ErrorResponse><Error>.
import { ACCOUNT_ID, REGION } from './config.js';
import type { AwsState, RdsCluster, RdsInstance } from './aws-state.js';
import { AwsError, errorResponseXml, list, type QueryParams, type XmlChild, xmlDocument } from './aws-xml.js';

export const RDS_XMLNS = 'http://rds.amazonaws.com/doc/2014-10-31/';
export const RDS_ACTIONS = ['DescribeDBClusters', 'DescribeDBInstances'];
// The hosted zone AWS uses for RDS endpoints in us-east-1.
const RDS_HOSTED_ZONE = 'Z2R2ITUGPM61AM';

function filters(p: QueryParams): { name: string; values: string[] }[] {
  return p.indexes('Filters.Filter').map((i) => ({
    name: p.get(`Filters.Filter.${i}.Name`) ?? '',
    values: p.list(`Filters.Filter.${i}.Values.Value`),
  }));
}

const sgXml = (ids: string[]) =>
  list('VpcSecurityGroups', 'VpcSecurityGroupMembership', ids, (id) => [
    ['VpcSecurityGroupId', id],
    ['Status', 'active'],
  ]);

function clusterXml(c: RdsCluster): XmlChild[] {
  return [
    ['AllocatedStorage', 1],
    list('AvailabilityZones', 'AvailabilityZone', [`${REGION}a`, `${REGION}b`, `${REGION}c`], (z) => z),
    ['BackupRetentionPeriod', 1],
    ['DatabaseName', c.databaseName],
    ['DBClusterIdentifier', c.id],
    ['DBClusterParameterGroup', 'default.aurora-mysql8.0'],
    ['DBSubnetGroup', 'sandbox'],
    ['Status', c.status],
    ['Endpoint', c.endpoint],
    ['ReaderEndpoint', c.readerEndpoint],
    ['MultiAZ', false],
    ['Engine', c.engine],
    ['EngineVersion', c.engineVersion],
    ['Port', c.port],
    ['MasterUsername', c.masterUsername],
    list('DBClusterMembers', 'DBClusterMember', c.members, (m) => [
      ['DBInstanceIdentifier', m.instanceId],
      ['IsClusterWriter', m.writer],
      ['DBClusterParameterGroupStatus', 'in-sync'],
      ['PromotionTier', 1],
    ]),
    sgXml(c.securityGroupIds),
    ['HostedZoneId', RDS_HOSTED_ZONE],
    ['StorageEncrypted', true],
    ['DbClusterResourceId', c.resourceId],
    ['DBClusterArn', `arn:aws:rds:${REGION}:${ACCOUNT_ID}:cluster:${c.id}`],
    ['ClusterCreateTime', c.createdAt],
    ['EngineMode', 'provisioned'],
    ['DeletionProtection', false],
    ['StorageType', 'aurora'],
  ];
}

function instanceXml(i: RdsInstance): XmlChild[] {
  return [
    ['DBInstanceIdentifier', i.id],
    ['DBInstanceClass', i.instanceClass],
    ['Engine', i.engine],
    ['DBInstanceStatus', i.status],
    [
      'Endpoint',
      [
        ['Address', i.address],
        ['Port', i.port],
        ['HostedZoneId', RDS_HOSTED_ZONE],
      ],
    ],
    ['InstanceCreateTime', i.createdAt],
    sgXml(i.securityGroupIds),
    ['AvailabilityZone', i.availabilityZone],
    ['MultiAZ', false],
    ['EngineVersion', i.engineVersion],
    ['PubliclyAccessible', false],
    ['StorageType', i.clusterId ? 'aurora' : 'gp3'],
    ['DbInstancePort', 0],
    ['DBClusterIdentifier', i.clusterId],
    ['StorageEncrypted', true],
    ['DbiResourceId', i.resourceId],
    ['DBInstanceArn', `arn:aws:rds:${REGION}:${ACCOUNT_ID}:db:${i.id}`],
    ['PromotionTier', 1],
  ];
}

function respond(action: string, reqId: string, result: XmlChild[]): string {
  return xmlDocument(`${action}Response`, RDS_XMLNS, [
    [`${action}Result`, result],
    ['ResponseMetadata', [['RequestId', reqId]]],
  ]);
}

export function handleRds(action: string, p: QueryParams, state: AwsState, reqId: string): string {
  if (action === 'DescribeDBClusters') {
    const id = p.get('DBClusterIdentifier');
    let clusters = state.clusters;
    if (id) {
      clusters = clusters.filter(
        (c) => c.id === id || `arn:aws:rds:${REGION}:${ACCOUNT_ID}:cluster:${c.id}` === id,
      );
      if (!clusters.length) throw new AwsError('DBClusterNotFoundFault', `DBCluster ${id} not found.`, 404);
    }
    for (const f of filters(p)) {
      const test: Record<string, (c: RdsCluster) => boolean> = {
        'db-cluster-id': (c) => f.values.includes(c.id),
        engine: (c) => f.values.includes(c.engine),
        'db-cluster-resource-id': (c) => f.values.includes(c.resourceId),
      };
      const t = test[f.name];
      if (!t) throw new AwsError('InvalidParameterValue', `Unrecognized filter name: ${f.name}.`);
      clusters = clusters.filter(t);
    }
    return respond(action, reqId, [
      list('DBClusters', 'DBCluster', clusters, clusterXml) ?? ['DBClusters', ''],
    ]);
  }
  if (action === 'DescribeDBInstances') {
    const id = p.get('DBInstanceIdentifier');
    let instances = state.instances;
    if (id) {
      instances = instances.filter(
        (i) => i.id === id || `arn:aws:rds:${REGION}:${ACCOUNT_ID}:db:${i.id}` === id,
      );
      if (!instances.length) throw new AwsError('DBInstanceNotFound', `DBInstance ${id} not found.`, 404);
    }
    for (const f of filters(p)) {
      const test: Record<string, (i: RdsInstance) => boolean> = {
        'db-instance-id': (i) => f.values.includes(i.id),
        'db-cluster-id': (i) => i.clusterId !== undefined && f.values.includes(i.clusterId),
        engine: (i) => f.values.includes(i.engine),
        'dbi-resource-id': (i) => f.values.includes(i.resourceId),
      };
      const t = test[f.name];
      if (!t) throw new AwsError('InvalidParameterValue', `Unrecognized filter name: ${f.name}.`);
      instances = instances.filter(t);
    }
    return respond(action, reqId, [
      list('DBInstances', 'DBInstance', instances, instanceXml) ?? ['DBInstances', ''],
    ]);
  }
  throw new AwsError(
    'InvalidAction',
    `The action ${action} is not valid for this web service (the sandbox emulates ${RDS_ACTIONS.join(', ')}).`,
  );
}

export const rdsErrorXml = (e: AwsError, reqId: string): string => errorResponseXml(RDS_XMLNS, e, reqId);
