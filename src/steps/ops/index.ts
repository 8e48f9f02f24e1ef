import type { StepKind } from '../../engine/types.js';

export const opsKinds: StepKind[] = [];
