import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { MoaQueues } from '@moa-queue/contract';
import type { Express } from 'express';

import { BULL_BOARD_PATH } from './console-paths.js';

type BoardServerAdapter = Parameters<typeof createBullBoard>[0]['serverAdapter'];

/**
 * bull-board over every queue (requests, deadlines, one per provider), as an
 * Express app to mount at {@link BULL_BOARD_PATH}, with its write actions
 * (add, retry, pause, obliterate). The access gate lets only admin keys
 * reach it.
 */
export function bullBoardApp(queues: MoaQueues): Express {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queues.all().map((queue) => new BullMQAdapter(queue)),
    // @bull-board/express pins an older @bull-board/api for its types only (its
    // code never loads it); the adapter implements the same interface.
    serverAdapter: serverAdapter as unknown as BoardServerAdapter,
    options: { uiConfig: { boardTitle: 'MoA Queue' } },
  });
  const app = serverAdapter.getRouter() as Express;
  app.disable('x-powered-by');
  return app;
}
