/** The durable event log behind the live event stream (`GET /v1/events`) and `--follow`. */
export { eventsSchema } from './schema.ts';
export { EventLog, type EventType, type NewEvent, type StoredEvent } from './event-log.ts';
