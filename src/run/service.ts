/**
 * Which service a run moves: the first service LC1 declares (resource table). An LC that declares none
 * has nothing that says how to check, drain or hold its service: the run refuses it.
 */
import { UnderstudyError } from '../core/index.ts';
import type { ServiceDefinition } from '../inventory/index.ts';
import type { ResolvedRunOptions } from './types.ts';

/** The error for an LC that declares no service, naming it and the command that declares one. */
export function serviceNotDeclared(lc: string, what: string): UnderstudyError {
  return new UnderstudyError('SERVICE_NOT_DECLARED', `${lc} declares no service, so ${what}`, {
    hint: `Declare it: understudy lc service set ${lc} --service-unit <unit.service> (or --service-pid-file <path>) --service-port <port> --health http:/<path>:200 (docs/lxc.md, services).`,
    details: { lc },
  });
}

/** The service LC1 declares first; SERVICE_NOT_DECLARED when it declares none. */
export function serviceOfLc(lc: string, declared: readonly ServiceDefinition[]): ServiceDefinition {
  const [service] = declared;
  if (!service) throw serviceNotDeclared(lc, 'a patch run cannot tell how to check, drain or hold it');
  return service;
}

/** The service of a run, as journalled when it started. */
export function runService(options: ResolvedRunOptions): ServiceDefinition {
  if (!options.service)
    throw serviceNotDeclared(options.lc, 'the run (journalled without the service it moves) cannot go on');
  return options.service;
}
