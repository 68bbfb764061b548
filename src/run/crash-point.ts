/**
 * Test hook for crash safety: UNDERSTUDY_CRASH_AT=<point>:<before|after|during> kills this process with
 * SIGKILL at that point, exactly as a crash of the manager would. Points: every step name (before,
 * after), `copy-<disk>` (during the full transfer), `record-applied` (during: the patches recorded,
 * the standby's old disks not yet dropped), `watch` (during: after the first health check),
 * `switch/<switch step>` (after),
 * `switch/final-sync` (during: once the first disk of the final sync is synced, the others
 * possibly still syncing).
 */
export function crashPoint(point: string, when: 'before' | 'after' | 'during'): void {
  if (process.env.UNDERSTUDY_CRASH_AT === `${point}:${when}`) process.kill(process.pid, 'SIGKILL');
}
