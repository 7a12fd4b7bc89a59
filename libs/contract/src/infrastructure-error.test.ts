import { describe, expect, it } from 'vitest';
import { isInfrastructureError } from './infrastructure-error.js';

/** An error shaped as ioredis hands over a Redis error reply. */
function replyError(message: string, previousErrors?: Error[]): Error {
  const error = new Error(message) as Error & { previousErrors?: Error[] };
  error.name = 'ReplyError';
  if (previousErrors) error.previousErrors = previousErrors;
  return error;
}

/** An error shaped as Node's net module reports a socket failure. */
function systemError(code: string, syscall = 'connect'): Error {
  return Object.assign(new Error(`${syscall} ${code} 127.0.0.1:6379`), { code, syscall });
}

const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

describe('isInfrastructureError', () => {
  it.each([
    ['OOM under noeviction', replyError(OOM)],
    [
      'OOM inside a script (Redis 7)',
      replyError(`${OOM} script: 37be6840b4b50cf43f45291cff18d0a6756379e0, on @user_script:1.`),
    ],
    [
      'OOM inside a script (Redis 6 wrapping)',
      replyError(`ERR Error running script (call to f_37be): @user_script:1: -${OOM}`),
    ],
    [
      'a MULTI aborted because Redis refused its commands',
      replyError('EXECABORT Transaction discarded because of previous errors.', [replyError(OOM)]),
    ],
    ['a replica during a failover', replyError("READONLY You can't write against a read only replica.")],
    [
      'a blocked command of a server turned replica',
      replyError(
        'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
      ),
    ],
    ['Redis loading its data', replyError('LOADING Redis is loading the dataset in memory')],
    ['a long script', replyError('BUSY Redis is busy running a script. You can only call SCRIPT KILL.')],
    [
      'master link down',
      replyError('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is no'),
    ],
    ['cannot persist', replyError('MISCONF Redis is configured to save RDB snapshots, but it is unable to')],
    ['connection refused', systemError('ECONNREFUSED')],
    ['connection reset', systemError('ECONNRESET', 'read')],
    [
      'every address refused',
      Object.assign(new AggregateError([systemError('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' }),
    ],
    [
      'ioredis gave up on a command',
      Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
        name: 'MaxRetriesPerRequestError',
      }),
    ],
    ['ioredis on a closed connection', new Error('Connection is closed.')],
    ['a command timeout', new Error('Command timed out')],
  ])('%s is one', (_label, error) => {
    expect(isInfrastructureError(error)).toBe(true);
  });

  it.each([
    [
      'a reply error of our own making',
      replyError('WRONGTYPE Operation against a key holding the wrong kind'),
    ],
    [
      'a script error',
      replyError('ERR user_script:1: Script attempted to access nonexistent global variable'),
    ],
    [
      'BUSYGROUP (the caller asked for an existing group)',
      replyError('BUSYGROUP Consumer Group name already exists'),
    ],
    ['BUSYKEY', replyError('BUSYKEY Target key name already exists.')],
    [
      'a MULTI aborted for a syntax error',
      replyError('EXECABORT Transaction discarded', [replyError('ERR syntax')]),
    ],
    ['a provider saying OOM (a CUDA error is not Redis)', new Error('OOM: CUDA out of memory')],
    [
      'a provider connection error, even with a socket cause',
      new Error('Connection error.', { cause: systemError('ECONNREFUSED') }),
    ],
    [
      'a webhook receiver that refused',
      new TypeError('fetch failed', { cause: systemError('ECONNREFUSED') }),
    ],
    ['an error with a look-alike code but no syscall', Object.assign(new Error('x'), { code: 'ECONNRESET' })],
    ['BullMQ losing a lock', new Error('Missing lock for job job_1. moveToFinished')],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'layers')")],
    ['a string', 'OOM command not allowed'],
    ['nothing', undefined],
  ])('%s is not', (_label, error) => {
    expect(isInfrastructureError(error)).toBe(false);
  });
});
