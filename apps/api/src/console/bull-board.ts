import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { MoaQueues } from '@moa-queue/contract';
import type { Express } from 'express';

type BoardServerAdapter = Parameters<typeof createBullBoard>[0]['serverAdapter'];

/** Where bull-board is served. */
export const BULL_BOARD_PATH = '/admin/queues';

/**
 * bull-board over every queue (requests, deadlines, one per provider), as an
 * Express app to mount at {@link BULL_BOARD_PATH}. Auth is the console's:
 * the caller mounts it behind `consoleAuth`.
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
