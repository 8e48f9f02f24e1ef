// The maintenance budget clock. It counts from when maintenance was switched on as the journal
// records it (wall clock), so a run that was killed and resumed keeps the time already spent.
export class BudgetClock {
  private timer: NodeJS.Timeout | undefined;
  private since: number | undefined;

  constructor(
    private readonly budgetMs: number | undefined,
    private readonly onTick: (elapsedMs: number) => void,
    /** Called once per start when the elapsed time passes the budget. */
    private readonly onOver: (elapsedMs: number) => void,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  elapsedMs(now = Date.now()): number | undefined {
    return this.since === undefined ? undefined : now - this.since;
  }

  /** Starts counting from `sinceMs` (epoch ms); checks at once, so a resumed run over budget stops now. */
  start(sinceMs: number): void {
    if (this.timer) return;
    this.since = sinceMs;
    let over = false;
    const check = () => {
      const elapsed = Date.now() - sinceMs;
      this.onTick(elapsed);
      if (!over && this.budgetMs !== undefined && elapsed > this.budgetMs) {
        over = true;
        this.onOver(elapsed);
      }
    };
    this.timer = setInterval(check, 250);
    this.timer.unref();
    check();
  }

  /** Stops checking (a rollback must not be aborted by the budget); the start time is kept. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
