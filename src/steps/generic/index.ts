import type { StepKind } from '../../engine/types.js';
import { assertKind } from './assert.js';
import { httpCheck } from './http-check.js';
import { shellRun } from './shell-run.js';
import { wait } from './wait.js';

export const genericKinds: StepKind[] = [shellRun, httpCheck, wait, assertKind];
