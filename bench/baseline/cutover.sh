#!/usr/bin/env bash
# The sandbox cutover written by hand, as a careful operator without `cutover` would: the steps of
# runbooks/sandbox.yaml in the same order, each checked, with the mysql client, 1 s polling loops and
# small AWS SDK one-liners (no aws CLI here). No rollback: on the first failure it stops and says
# where. `npm run bench` (bench/flip-compare.ts) measures it against the tool.
#   bench/baseline/cutover.sh [ENV_FILE]      (default: .sandbox/env, as `cutover sandbox up` writes it)
# Exit: 0 cut over, 1 a step failed (the sandbox is left where it stopped), 2 usage / unusable env file.
set -euo pipefail

ts() { date -u +%H:%M:%S.%3N; }
log() { printf '%s baseline: %s\n' "$(ts)" "$*" >&2; }
die() { printf '%s baseline: FAILED: %s\n' "$(ts)" "$*" >&2; exit 1; }
usage() { printf 'baseline: %s\nusage: %s [ENV_FILE]\n' "$*" "$0" >&2; exit 2; }

[[ $# -le 1 ]] || usage "too many arguments"
ENV_FILE=${1:-.sandbox/env}
[[ -r $ENV_FILE ]] || usage "cannot read $ENV_FILE (start the sandbox: cutover sandbox up)"
# The sandbox writes shell-quoted KEY=value lines; plain variables, not exported: secrets reach a
# child only through the 0600 option file or the SDK's own environment variables, never argv.
# shellcheck disable=SC1090
. "$ENV_FILE"
for v in SANDBOX_DIR CUTOVER_AWS_ENDPOINT AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  SANDBOX_OLD_DB_HOST SANDBOX_NEW_DB_HOST SANDBOX_DB_PORT SANDBOX_DB_USER SANDBOX_DB_PASSWORD \
  SANDBOX_APP_DB_USER SANDBOX_DB_NEW_NAME SANDBOX_ZONE_ID SANDBOX_RECORD_NAME SANDBOX_RECORD_TTL \
  SANDBOX_SECURITY_GROUP_ID SANDBOX_SECURITY_GROUP_PORT SANDBOX_ADMIN_CIDR SANDBOX_DNS_HOST \
  SANDBOX_DNS_PORT SANDBOX_APP_CTL SANDBOX_APP_URL SANDBOX_APP_MOBILE_URL SANDBOX_CRONTAB_APP1 \
  SANDBOX_CRONTAB_APP2; do
  [[ -n ${!v:-} ]] || usage "$ENV_FILE does not set $v"
done
# File/position replication and the managed platform's procedures are other scripts.
[[ ${SANDBOX_PLATFORM:-self} == self && ${SANDBOX_GTID:-on} == on ]] ||
  usage "this script handles the self-managed GTID sandbox only (platform ${SANDBOX_PLATFORM:-?}, gtid ${SANDBOX_GTID:-?})"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The SDK one-liners use the repo's @aws-sdk packages (what `npm i` next to the script would give).
export NODE_PATH="$HERE/../../node_modules${NODE_PATH:+:$NODE_PATH}"
export CUTOVER_AWS_ENDPOINT AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export SANDBOX_SECURITY_GROUP_ID SANDBOX_SECURITY_GROUP_PORT SANDBOX_ADMIN_CIDR SANDBOX_ZONE_ID \
  SANDBOX_RECORD_NAME SANDBOX_RECORD_TTL SANDBOX_DB_NEW_NAME SANDBOX_NEW_DB_HOST SANDBOX_DNS_HOST SANDBOX_DNS_PORT
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
MYSQL=$(command -v mariadb || command -v mysql || true)
[[ -n $MYSQL ]] || usage "no mysql/mariadb client on PATH"

umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
esc() { local s=${1//\\/\\\\}; printf '%s' "${s//\"/\\\"}"; }
printf '[client]\nuser="%s"\npassword="%s"\nport=%s\nprotocol=TCP\nconnect-timeout=3\n' \
  "$(esc "$SANDBOX_DB_USER")" "$(esc "$SANDBOX_DB_PASSWORD")" "$SANDBOX_DB_PORT" >"$WORK/my.cnf"

# sql HOST STATEMENT: tab-separated rows, no header; fails the caller on any error.
sql() { "$MYSQL" --defaults-extra-file="$WORK/my.cnf" -h "$1" -N -B -e "$2"; }
sqlq() { printf "'%s'" "${1//\'/\'\'}"; }
# wait_for WHAT SECONDS CMD...: CMD now, then every second, until it succeeds or time runs out.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i <= secs; i++)); do
    if "$@"; then return 0; fi
    ((i < secs)) && sleep 1
  done
  die "$what: still not so after ${secs}s"
}
http_status() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true; }
both_paths() { [[ $(http_status "$SANDBOX_APP_URL") == "$1" && $(http_status "$SANDBOX_APP_MOBILE_URL") == "$1" ]]; }
replica_threads() {
  "$MYSQL" --defaults-extra-file="$WORK/my.cnf" -h "$SANDBOX_NEW_DB_HOST" -e 'SHOW SLAVE STATUS\G' | awk '/Slave_(IO|SQL)_Running:/ {print $2}' | paste -sd, -
}

MARK='#baseline-disabled# '
is_job='^[[:space:]]*[^#[:space:]]' # not blank, not a comment
is_var='^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*='
active_jobs() { grep -E "$is_job" "$1" | grep -Evc "$is_var" || true; }
rewrite() { # rewrite FILE AWK_PROGRAM: in place through a temp file, so a crash leaves one or the other
  awk -v mark="$MARK" -v job="$is_job" -v var="$is_var" "$2" "$1" >"$1.baseline.tmp" && mv "$1.baseline.tmp" "$1"
}

T0=$(date +%s%3N)
CRONTABS=("$SANDBOX_CRONTAB_APP1" "$SANDBOX_CRONTAB_APP2")

# 0. Preconditions: both servers answer, old writable, new a running read-only replica.
[[ $(sql "$SANDBOX_OLD_DB_HOST" 'SELECT @@global.read_only') == 0 ]] || die "old ($SANDBOX_OLD_DB_HOST) is not writable"
[[ $(sql "$SANDBOX_NEW_DB_HOST" 'SELECT @@global.read_only') == 1 ]] || die "new ($SANDBOX_NEW_DB_HOST) is not read-only"
[[ $(replica_threads) == Yes,Yes ]] || die "replication old → new is not running on new"
for f in "${CRONTABS[@]}"; do [[ -w $f ]] || die "cannot write crontab $f"; done
log "preconditions hold"

# 1. Crons off: comment out every job line behind a marker that step 11 strips again.
declare -A JOBS
for f in "${CRONTABS[@]}"; do
  JOBS[$f]=$(active_jobs "$f")
  rewrite "$f" '$0 ~ job && $0 !~ var { print mark $0; next } { print }'
  [[ $(active_jobs "$f") == 0 ]] || die "crontab $f still has active jobs"
done
log "crons off (${JOBS[$SANDBOX_CRONTAB_APP1]} + ${JOBS[$SANDBOX_CRONTAB_APP2]} jobs commented out)"

# 2. Maintenance on, on every client path; checked from outside.
node "$SANDBOX_APP_CTL" maintenance on --scope all --dir "$SANDBOX_DIR" >/dev/null || die "app ctl maintenance on"
wait_for "web and mobile paths answering 503" 10 both_paths 503
log "maintenance on"

# 3. Fence old: revoke every ingress rule on the database port except the admin range.
revoked=$(node -e '
const { EC2Client, DescribeSecurityGroupRulesCommand: D, RevokeSecurityGroupIngressCommand: R } = require("@aws-sdk/client-ec2");
const e = process.env, ec2 = new EC2Client({ endpoint: e.CUTOVER_AWS_ENDPOINT }), port = Number(e.SANDBOX_SECURITY_GROUP_PORT);
(async () => {
  const { SecurityGroupRules: rules = [] } = await ec2.send(new D({ Filters: [{ Name: "group-id", Values: [e.SANDBOX_SECURITY_GROUP_ID] }] }));
  const open = rules.filter((r) => !r.IsEgress && r.CidrIpv4 !== e.SANDBOX_ADMIN_CIDR &&
    (r.IpProtocol === "-1" || (r.IpProtocol === "tcp" && r.FromPort <= port && port <= r.ToPort)));
  if (open.length) await ec2.send(new R({ GroupId: e.SANDBOX_SECURITY_GROUP_ID, SecurityGroupRuleIds: open.map((r) => r.SecurityGroupRuleId) }));
  console.log(open.map((r) => `${r.SecurityGroupRuleId} (${r.CidrIpv4 ?? r.ReferencedGroupInfo?.GroupId ?? "?"})`).join(", ") || "none");
})().catch((x) => { console.error(`${x.name}: ${x.message}`); process.exit(1); });
') || die "revoking the security-group rules of $SANDBOX_SECURITY_GROUP_ID"
still=$(node -e '
const { EC2Client, DescribeSecurityGroupRulesCommand: D } = require("@aws-sdk/client-ec2");
const e = process.env, port = Number(e.SANDBOX_SECURITY_GROUP_PORT);
new EC2Client({ endpoint: e.CUTOVER_AWS_ENDPOINT }).send(new D({ Filters: [{ Name: "group-id", Values: [e.SANDBOX_SECURITY_GROUP_ID] }] }))
  .then(({ SecurityGroupRules: rules = [] }) => console.log(rules.filter((r) => !r.IsEgress && r.CidrIpv4 !== e.SANDBOX_ADMIN_CIDR &&
    (r.IpProtocol === "-1" || (r.IpProtocol === "tcp" && r.FromPort <= port && port <= r.ToPort))).length))
  .catch((x) => { console.error(`${x.name}: ${x.message}`); process.exit(1); });
') || die "describing $SANDBOX_SECURITY_GROUP_ID after the revoke"
[[ $still == 0 ]] || die "$SANDBOX_SECURITY_GROUP_ID still has $still rule(s) open on port $SANDBOX_SECURITY_GROUP_PORT"
log "old fenced: revoked $revoked"

# 4. A revoke leaves open connections alone: end the application's sessions on old until none is left.
APP_USER=$(sqlq "$SANDBOX_APP_DB_USER")
no_app_sessions() {
  local ids
  ids=$(sql "$SANDBOX_OLD_DB_HOST" "SELECT id FROM information_schema.processlist WHERE user = $APP_USER") || return 1
  [[ -z $ids ]] && return 0
  # --force: a session that ended between the list and its KILL is not a failure; the recount decides.
  "$MYSQL" --defaults-extra-file="$WORK/my.cnf" -h "$SANDBOX_OLD_DB_HOST" --force -e \
    "$(printf 'KILL CONNECTION %s;' $ids)" 2>/dev/null || true
  [[ $(sql "$SANDBOX_OLD_DB_HOST" "SELECT COUNT(*) FROM information_schema.processlist WHERE user = $APP_USER") == 0 ]]
}
wait_for "no $SANDBOX_APP_DB_USER session left on old" 10 no_app_sessions
log "application sessions on old ended"

# 5. Freeze old.
sql "$SANDBOX_OLD_DB_HOST" 'SET GLOBAL read_only = ON' || die "SET GLOBAL read_only = ON on old"
[[ $(sql "$SANDBOX_OLD_DB_HOST" 'SELECT @@global.read_only') == 1 ]] || die "old is not read-only"
log "old read-only"

# 6. New executes everything old wrote: old's final GTID position, polled on new.
FINAL=$(sql "$SANDBOX_OLD_DB_HOST" 'SELECT @@global.gtid_binlog_pos') || die "reading old's GTID position"
caught_up() { [[ $(sql "$SANDBOX_NEW_DB_HOST" "SELECT MASTER_GTID_WAIT($(sqlq "$FINAL"), 0)") == 0 ]]; }
wait_for "new at old's final position $FINAL" 30 caught_up
log "new caught up ($FINAL)"

# 7. Stop replication.
sql "$SANDBOX_NEW_DB_HOST" 'STOP SLAVE' || die "STOP SLAVE on new"
[[ $(replica_threads) == No,No ]] || die "replication threads on new still running: $(replica_threads)"
log "replication stopped"

# 8. New takes writes.
sql "$SANDBOX_NEW_DB_HOST" 'SET GLOBAL read_only = OFF' || die "SET GLOBAL read_only = OFF on new"
[[ $(sql "$SANDBOX_NEW_DB_HOST" 'SELECT @@global.read_only') == 0 ]] || die "new is still read-only"
log "new writable"

# 9. Point the name at new, then wait for Route 53 to report the change INSYNC.
CHANGE=$(node -e '
const { Route53Client, ChangeResourceRecordSetsCommand: C } = require("@aws-sdk/client-route-53");
const e = process.env;
new Route53Client({ endpoint: e.CUTOVER_AWS_ENDPOINT }).send(new C({ HostedZoneId: e.SANDBOX_ZONE_ID, ChangeBatch: {
  Comment: "baseline cutover: database name to new",
  Changes: [{ Action: "UPSERT", ResourceRecordSet: { Name: e.SANDBOX_RECORD_NAME, Type: "CNAME", TTL: Number(e.SANDBOX_RECORD_TTL),
    ResourceRecords: [{ Value: e.SANDBOX_DB_NEW_NAME }] } }] } }))
  .then((r) => console.log(r.ChangeInfo.Id))
  .catch((x) => { console.error(`${x.name}: ${x.message}`); process.exit(1); });
') || die "Route 53 UPSERT of $SANDBOX_RECORD_NAME"
export CHANGE
insync() {
  [[ $(node -e '
const { Route53Client, GetChangeCommand: G } = require("@aws-sdk/client-route-53");
new Route53Client({ endpoint: process.env.CUTOVER_AWS_ENDPOINT }).send(new G({ Id: process.env.CHANGE }))
  .then((r) => console.log(r.ChangeInfo.Status))
  .catch((x) => { console.error(`${x.name}: ${x.message}`); process.exit(1); });
') == INSYNC ]]
}
wait_for "Route 53 change $CHANGE INSYNC" 120 insync
log "Route 53: $SANDBOX_RECORD_NAME → $SANDBOX_DB_NEW_NAME INSYNC ($CHANGE)"

# 10. The DNS server answers new.
answers_new() {
  [[ $(node -e '
const { Resolver } = require("node:dns").promises;
const e = process.env, r = new Resolver({ timeout: 1000, tries: 1 });
r.setServers([`${e.SANDBOX_DNS_HOST}:${e.SANDBOX_DNS_PORT}`]);
r.resolve4(e.SANDBOX_RECORD_NAME).then((a) => console.log(a.join(","))).catch(() => console.log("none"));
') == "$SANDBOX_NEW_DB_HOST" ]]
}
wait_for "DNS answering $SANDBOX_NEW_DB_HOST for $SANDBOX_RECORD_NAME" 60 answers_new
log "DNS answers $SANDBOX_NEW_DB_HOST"

# 11. Maintenance off, crons back.
node "$SANDBOX_APP_CTL" maintenance off --dir "$SANDBOX_DIR" >/dev/null || die "app ctl maintenance off"
wait_for "web and mobile paths answering 200" 10 both_paths 200
log "maintenance off"
for f in "${CRONTABS[@]}"; do
  rewrite "$f" 'index($0, mark) == 1 { print substr($0, length(mark) + 1); next } { print }'
  [[ $(active_jobs "$f") == "${JOBS[$f]}" ]] || die "crontab $f: $(active_jobs "$f") active jobs, expected ${JOBS[$f]}"
done
log "crons on; cut over in $(($(date +%s%3N) - T0)) ms"
