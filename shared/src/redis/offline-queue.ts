import { OrderlyError } from '../errors';

/**
 * A bound on a Redis client's offline queue. While Redis is away, ioredis keeps every command
 * issued in memory until it is back (`enableOfflineQueue`), however long the outage: each HTTP
 * request that queues a job, each report, each lock renewal of a worker adds one. Turning the
 * queue off is no answer here: a runner's finished report issued during a short outage must wait
 * for Redis, not be dropped, and BullMQ workers expect it. So commands still wait, up to `max` of
 * them; past that, a command is refused at once with `ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL`
 * (retryable), which callers already handle as an unavailable Redis: a run stays stored and is
 * queued by the sweep, a report's failure leaves the attempt to the lost-attempt path.
 */
export const REDIS_OFFLINE_QUEUE_MAX = 1000;

/** The parts of an ioredis client (and its Command) this uses; structural, so `shared` need not depend on ioredis. */
interface CommandLike {
  name?: string;
  reject(err: Error): void;
  promise: Promise<unknown>;
}
interface ClientLike {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  sendCommand(command: any, stream?: any): unknown;
}

/** How many commands wait in the client's offline queue (ioredis keeps it as `offlineQueue`, a deque). */
export function offlineQueueLength(client: ClientLike): number {
  const queue = (client as unknown as { offlineQueue?: { length?: number } }).offlineQueue;
  return typeof queue?.length === 'number' ? queue.length : 0;
}

/**
 * Bounds `client`'s offline queue to `max` commands (see above); returns the client. Connections
 * BullMQ duplicates from it (its blocking clients) issue one command at a time and need no bound.
 */
export function boundOfflineQueue<T extends ClientLike>(client: T, max: number = REDIS_OFFLINE_QUEUE_MAX): T {
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: CommandLike, stream?: unknown) => {
    // Only while disconnected: once the socket is up ('connect'), ioredis's own ready check and
    // the flush of the queued commands go through here too, and must not be refused.
    const status = (client as unknown as { status?: string }).status;
    if (status !== 'ready' && status !== 'connect' && offlineQueueLength(client) >= max) {
      command.reject(
        new OrderlyError('ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL', `Redis is unreachable and ${max} commands already wait for it; this one is refused`, {
          max,
        }),
      );
      return command.promise;
    }
    return send(command, stream);
  };
  return client;
}
