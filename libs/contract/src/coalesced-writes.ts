import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';

/** Sockets already coalescing (ioredis opens a new one at every reconnect). */
const coalescing = new WeakSet<Socket>();

/**
 * Makes a connection send the commands issued in one turn of the event loop
 * in one socket write. ioredis writes every command as it is issued, one
 * system call each; under load a worker issues hundreds per second (BullMQ's
 * scripts, our events), and those calls were its largest single cost. Here
 * the first write of a turn corks the socket and the check phase of the same
 * turn (`setImmediate`) uncorks it, so Node flushes the turn's commands with
 * one `writev`. Nothing else changes: commands keep their order, replies are
 * matched as before (Redis answers a pipelined stream in order), and a
 * command waits at most until the end of the current turn.
 *
 * Unlike ioredis's `enableAutoPipelining`, no pipeline object is built per
 * turn: on a connection that carries BullMQ's ~60 scripts that object copies
 * every script's function, which costs more than it saves.
 */
export function coalesceWrites(redis: Redis): void {
  const apply = () => {
    const socket = redis.stream as Socket | undefined;
    if (!socket || coalescing.has(socket)) return;
    coalescing.add(socket);
    const write = socket.write;
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    socket.write = function coalescedWrite(this: Socket, ...args: Parameters<Socket['write']>) {
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      return write.apply(this, args);
    } as Socket['write'];
  };
  apply();
  redis.on('connect', apply);
}
