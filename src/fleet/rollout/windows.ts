/**
 * Maintenance windows in the group's own time zone. A window is a local wall-clock start on given
 * weekdays plus a duration (it may run past midnight). Pure functions of the instant.
 */
import type { MaintenanceWindow, Weekday } from './spec.ts';

const weekdayIndex: Record<Weekday, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const minutesPerWeek = 7 * 24 * 60;

/** Minutes since Sunday 00:00 local time in `timeZone` at `at`. */
export function localMinuteOfWeek(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  const day = weekdayIndex[get('weekday').toLowerCase().slice(0, 3) as Weekday];
  return day * 24 * 60 + Number(get('hour')) * 60 + Number(get('minute'));
}

/** True when `at` falls inside the window (local time of the window's zone). */
export function isWindowOpen(window: MaintenanceWindow, at: Date): boolean {
  const now = localMinuteOfWeek(at, window.timeZone);
  const [h, m] = window.start.split(':').map(Number) as [number, number];
  return window.days.some((d) => {
    const start = weekdayIndex[d] * 24 * 60 + h * 60 + m;
    const since = (now - start + minutesPerWeek) % minutesPerWeek;
    return since < window.durationMinutes;
  });
}

/** A group may be patched at `at` when it has no windows or one of them is open. */
export function groupMayPatch(windows: readonly MaintenanceWindow[] | undefined, at: Date): boolean {
  return !windows || windows.length === 0 || windows.some((w) => isWindowOpen(w, at));
}

/**
 * The next instant (to the minute) at or after `from` when the group may patch, searching one week
 * ahead; undefined when no window ever opens.
 */
export function nextOpening(windows: readonly MaintenanceWindow[] | undefined, from: Date): Date | undefined {
  if (groupMayPatch(windows, from)) return from;
  const start = Math.ceil(from.getTime() / 60_000) * 60_000;
  for (let t = start; t <= start + minutesPerWeek * 60_000; t += 60_000)
    if (groupMayPatch(windows, new Date(t))) return new Date(t);
  return undefined;
}
