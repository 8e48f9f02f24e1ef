import type { StepKind } from '../../engine/types.js';
import { proxyFlip } from './flip.js';
import { proxyHold } from './hold.js';

export const proxyKinds: StepKind[] = [proxyFlip, proxyHold];
