import { randomBytes } from 'node:crypto';

/** A BullMQ key prefix unique to one test file and run, so runs never collide. */
export function uniquePrefix(name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`;
}
