import type { StepKind } from '../../engine/types.js';
import { cronsDisable, cronsEnable } from './crons.js';
import { maintenanceEnter, maintenanceExit } from './maintenance.js';
import { notify } from './notify.js';
import { smokeTest } from './smoke.js';

export const opsKinds: StepKind[] = [
  cronsDisable,
  cronsEnable,
  maintenanceEnter,
  maintenanceExit,
  smokeTest,
  notify,
];
