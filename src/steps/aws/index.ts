import type { StepKind } from '../../engine/types.js';

export const awsKinds: StepKind[] = [];
