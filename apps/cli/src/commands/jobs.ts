import { apiJson, apiTarget, CliError } from '../api.js';

/** `moa jobs get ID`: prints the job object. */
export async function jobsCommand(args: string[]): Promise<number> {
  const [action, id] = args;
  if (action !== 'get' || !id) throw new CliError('usage: moa jobs get ID', 2);
  const job = await apiJson<unknown>(apiTarget(), 'GET', `/v1/jobs/${encodeURIComponent(id)}`);
  process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  return 0;
}
