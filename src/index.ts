/**
 * The library's public surface. Every line here is public API and documented in the README.
 */
export { createSupervisor, Supervisor, type SupervisorOptions } from './supervisor/create.js';
export type { SupervisorClock } from './supervisor/supervisor.js';
export type {
  CallOptions,
  CallOutcome,
  ControlOptions,
  ServerDetail,
  ServerStatus,
  SupervisorApi,
  TransitionListener,
} from './supervisor/types.js';
export {
  OPERATOR_EVENTS,
  REASONS,
  SERVER_STATES,
  type OperatorEvent,
  type Reason,
  type ServerState,
  type Transition,
  type TransitionDetail,
} from '../machines/vocabulary.js';
export { serverMachine } from '../machines/server.machine.js';
export { supervisorMachine } from '../machines/supervisor.machine.js';
export { ERROR_CODES, SupervisorError, isSupervisorError, type ErrorCode } from './errors.js';
export { ConfigError, type ConfigProblem } from './config/problems.js';
export { loadConfigFile, parseConfigText, type LoadedConfig } from './config/load.js';
export {
  SETTING_KEYS,
  defaultSettings,
  type SettingKey,
  type Settings,
} from './config/settings.js';
export type { CacheStats } from './cache/types.js';
export { createLogger, type Logger } from './log.js';
