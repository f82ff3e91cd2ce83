import { ConsecutiveWindow } from './consecutive-window.js';
import { CountWindow } from './count-window.js';
import { TimeWindow } from './time-window.js';
import type { FailureWindow, WindowOptions } from './window.js';

/** The failure window `breaker.window` names. */
export function createFailureWindow(options: WindowOptions): FailureWindow {
  switch (options.window) {
    case 'consecutive':
      return new ConsecutiveWindow(options.failureThreshold);
    case 'count':
      return new CountWindow(options);
    case 'time':
      return new TimeWindow(options);
  }
}
