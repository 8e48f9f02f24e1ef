import type { StepKind } from '../../engine/types.js';

export const mysqlKinds: StepKind[] = [];
