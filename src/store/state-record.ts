import type { SupervisorTransitionEmitted } from '../../machines/supervisor.machine.js';
import type { Transition } from '../../machines/vocabulary.js';
import type { ServerStateRecord } from './store.js';

/** The last-state row a transition leaves behind, for a restart to resume from. */
export function stateRecordOf(
  transition: Transition,
  facts: SupervisorTransitionEmitted['facts'],
  disabled: boolean,
): ServerStateRecord {
  return {
    server: transition.server,
    state: transition.to,
    reason: transition.reason,
    since: transition.at,
    retryAt: facts.retryAt,
    attempt: facts.attempt,
    stickyOpen: facts.stickyOpen,
    disabled,
    detail: transition.detail,
  };
}
