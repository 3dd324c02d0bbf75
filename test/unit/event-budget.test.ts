import { EventBudget } from '../../src/controller/kubernetes/event-budget.ts';
import { capturedLog } from '../support/captured-log.ts';

describe('EventBudget', () => {
  it('writes Normal Events up to its burst, then at its rate; Warnings always', () => {
    let now = 0;
    const { log } = capturedLog();
    const budget = new EventBudget({ qps: 2, burst: 3, log, now: () => now });
    const normal = () => Array.from({ length: 5 }, () => budget.allows('Normal'));
    expect(normal()).toEqual([true, true, true, false, false]);
    expect(Array.from({ length: 50 }, () => budget.allows('Warning')).every(Boolean)).toBe(true);
    now = 500; // one token at 2/s
    expect(normal()).toEqual([true, false, false, false, false]);
  });

  it('says how many Events it dropped, in one line at most every report period', async () => {
    let now = 0;
    const { log, lines } = capturedLog();
    const budget = new EventBudget({ qps: 1, burst: 1, log, now: () => now, reportEveryMs: 30_000 });
    for (let i = 0; i < 10; i++) budget.allows('Normal'); // 1 written, 9 dropped
    now = 1000; // one token back: written
    budget.allows('Normal');
    now = 30_000;
    budget.allows('Normal'); // written (a token came back)
    budget.allows('Normal'); // dropped: the second report
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.msg, l.dropped])).toEqual([
      ['Normal Events dropped by the event budget (KINFER_KUBE_EVENT_QPS)', 1],
      ['Normal Events dropped by the event budget (KINFER_KUBE_EVENT_QPS)', 9],
    ]);
  });

  it('writes an Event with the key of one written within the repeat window once, Warnings too; again after it', () => {
    let now = 0;
    const { log } = capturedLog();
    const budget = new EventBudget({ qps: 100, burst: 100, log, now: () => now, repeatWindowMs: 60_000 });
    expect(budget.allows('Warning', 'uid-a/Invalid')).toBe(true);
    expect(budget.allows('Warning', 'uid-a/Invalid')).toBe(false);
    expect(budget.allows('Normal', 'uid-a/Running')).toBe(true);
    expect(budget.allows('Normal', 'uid-b/Running')).toBe(true);
    now = 59_999;
    expect(budget.allows('Normal', 'uid-a/Running')).toBe(false);
    // No key: every one counts (up to the budget).
    expect([budget.allows('Normal'), budget.allows('Normal')]).toEqual([true, true]);
    now = 60_000;
    expect(budget.allows('Warning', 'uid-a/Invalid')).toBe(true);
  });

  it('does not remember a Normal Event the budget dropped: it is written when a token comes back', () => {
    let now = 0;
    const { log } = capturedLog();
    const budget = new EventBudget({ qps: 1, burst: 1, log, now: () => now });
    expect(budget.allows('Normal', 'a')).toBe(true);
    expect(budget.allows('Normal', 'b')).toBe(false);
    now = 1000;
    expect(budget.allows('Normal', 'b')).toBe(true);
  });
});
