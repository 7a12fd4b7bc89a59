/**
 * Scenario: many SSE followers on one API process. 2,000 clients (each its
 * own TCP connection on loopback) follow 2,000 running jobs through
 * `GET /v1/jobs/{id}/events` on one API process, all served by its one
 * shared stream reader. Reports, before the crowd and while it is
 * connected: Redis `connected_clients`, the API's RSS and open file
 * descriptors (`/proc/<api pid>/fd`); and the event delivery delay (from
 * just before the event's `XADD` to the moment the client has parsed it),
 * p50/p99, against baselines measured in the same run: a direct
 * `XREAD BLOCK` client on Redis (no API) and one lone SSE follower. Then
 * the jobs are released and every follower must receive its `done`.
 *
 * The jobs are held at the fake provider while followers connect, so they
 * stay running; probe events (`type: "probe"`, the send time inside) are
 * appended to their streams by this driver as the workers append events
 * (`XADD`, then `PUBLISH` on the stream's channel) at a steady rate, then in
 * one burst (one event on every stream at once).
 *
 * Run: npm run bench:followers (BENCH_FOLLOWERS=2000, BENCH_PROBE_RATE=500
 * events/s, BENCH_PROBE_SECONDS=8).
 */
import { readdirSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { startBenchStack, type BenchStack } from './support/bench-stack.js';
import { cpuSeconds, percentile, rssMiB } from './support/process-stats.js';
import { printTable, writeResult } from './support/report.js';

const FOLLOWERS = Number(process.env.BENCH_FOLLOWERS ?? 2000);
const PROBE_RATE = Number(process.env.BENCH_PROBE_RATE ?? 500);
const PROBE_SECONDS = Number(process.env.BENCH_PROBE_SECONDS ?? 8);
/** Probes of each baseline (one stream each). */
const BASELINE_PROBES = 400;

const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

/** One follower: an SSE response parsed as it arrives. */
interface Follower {
  status: number;
  /** Event names in order (`retry:` blocks and comments left out). */
  events: string[];
  /** Delivery delays of probe events, ms. */
  delays: number[];
  done: boolean;
  ended: Promise<void>;
  close(): void;
}

function follow(url: string): Promise<Follower> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { agent, headers: { accept: 'text/event-stream' } });
    outgoing.on('error', reject);
    outgoing.on('response', (response) => {
      const follower: Follower = {
        status: response.statusCode ?? 0,
        events: [],
        delays: [],
        done: false,
        ended: new Promise((ended) => response.on('close', ended)),
        close: () => outgoing.destroy(),
      };
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!name || data === undefined) continue;
          follower.events.push(name);
          if (name === 'probe')
            follower.delays.push(performance.now() - (JSON.parse(data) as { t: number }).t);
          if (name === 'done') follower.done = true;
        }
      });
      resolve(follower);
    });
    outgoing.end();
  });
}

async function connectedClients(redis: Redis): Promise<number> {
  const info = await redis.info('clients');
  return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? 0);
}

/** Calls of XREAD so far and Redis's CPU time in them (µs), from INFO commandstats. */
async function xreadStats(redis: Redis): Promise<{ calls: number; usec: number }> {
  const info = await redis.info('commandstats');
  const match = /cmdstat_xread:calls=(\d+),usec=(\d+)/.exec(info);
  return { calls: Number(match?.[1] ?? 0), usec: Number(match?.[2] ?? 0) };
}

/** CPU of the API and Redis, and the XREADs issued, over one phase. */
async function phaseCost<T>(stack: BenchStack, apiPid: number, run: () => Promise<T>) {
  const redisPid = stack.redisServer.process.pid!;
  const [apiCpu, redisCpu, xread, started] = [
    cpuSeconds(apiPid),
    cpuSeconds(redisPid),
    await xreadStats(stack.redis),
    performance.now(),
  ];
  const result = await run();
  const seconds = (performance.now() - started) / 1000;
  const xreadAfter = await xreadStats(stack.redis);
  const reads = xreadAfter.calls - xread.calls;
  return {
    result,
    cost: {
      seconds: Number(seconds.toFixed(2)),
      apiCpuPercent: Number(((100 * (cpuSeconds(apiPid) - apiCpu)) / seconds).toFixed(1)),
      redisCpuPercent: Number(((100 * (cpuSeconds(redisPid) - redisCpu)) / seconds).toFixed(1)),
      xreadPerSecond: Number((reads / seconds).toFixed(1)),
      redisUsecPerXread: reads > 0 ? Number(((xreadAfter.usec - xread.usec) / reads).toFixed(1)) : 0,
    },
  };
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

async function snapshot(stack: BenchStack, apiPid: number) {
  return {
    redisConnectedClients: await connectedClients(stack.redis),
    apiRssMiB: Number(rssMiB(apiPid).toFixed(1)),
    apiOpenFds: openFds(apiPid),
  };
}

async function postJob(apiUrl: string, index: number): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: `Follower question ${index}` }] }),
  });
  const body = (await response.json()) as { id: string };
  if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}`);
  return body.id;
}

async function control(fakeUrl: string, path: string, body: unknown): Promise<void> {
  const response = await fetch(new URL(`/__control/${path}`, fakeUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
}

const probe = () => JSON.stringify({ type: 'probe', t: performance.now() });
const streamKey = (id: string) => `bench:moa-events:${id}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Sends `total` probes at `rate` per second, round-robin over `ids`' streams. */
async function steadyProbes(redis: Redis, ids: string[], rate: number, total: number): Promise<void> {
  const started = performance.now();
  for (let sent = 0; sent < total; sent += 1) {
    const due = started + (sent * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const key = streamKey(ids[sent % ids.length]!);
    // As publishEvent does: append, then notify on the channel named like the stream.
    void redis.xadd(key, '*', 'event', probe());
    void redis.publish(key, '');
  }
}

const round = (value: number) => Math.round(value * 100) / 100;
const stats = (delays: number[]) => ({
  events: delays.length,
  p50: Number(percentile(delays, 0.5).toFixed(2)),
  p99: Number(percentile(delays, 0.99).toFixed(2)),
  max: Number(Math.max(...delays).toFixed(2)),
});

const stack = await startBenchStack({
  workers: 1,
  latencyMs: 5,
  agents: 3,
  proposerLayers: 1,
  // Room for one tenant's 2,000 followers and jobs.
  config: { quotas: { maxStreams: FOLLOWERS * 2, maxActiveJobs: FOLLOWERS * 2 } },
});
const apiPid = stack.api.child.pid!;
const writer = new Redis(stack.redisUrl);
const direct = new Redis(stack.redisUrl);
const followers: Follower[] = [];
try {
  // Warm-up: one job followed to its end, so the API has loaded its code and opened its reader.
  const warmId = await postJob(stack.apiUrl, -1);
  const warm = await follow(`${stack.apiUrl}/v1/jobs/${warmId}/events`);
  await warm.ended;
  if (!warm.done) throw new Error('the warm-up follower got no done');

  await control(stack.fakeUrl, 'behaviour', { model: '*', behaviour: { hold: true } });
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < FOLLOWERS) {
        const index = next++;
        ids[index] = await postJob(stack.apiUrl, index);
      }
    }),
  );
  await sleep(1000);
  const before = await snapshot(stack, apiPid);

  // Baseline 1: a direct XREAD BLOCK on Redis, no API.
  const directKey = 'bench:direct-probe';
  const directDelays: number[] = [];
  const directReader = (async () => {
    let position = '$';
    while (directDelays.length < BASELINE_PROBES) {
      const reply = (await direct.xread('BLOCK', 5000, 'STREAMS', directKey, position)) as
        [string, [string, string[]][]][] | null;
      const now = performance.now();
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        position = id;
        directDelays.push(now - (JSON.parse(fields[1]!) as { t: number }).t);
      }
    }
  })();
  await sleep(200);
  for (let sent = 0; sent < BASELINE_PROBES; sent += 1) {
    void writer.xadd(directKey, '*', 'event', probe());
    await sleep(10);
  }
  await directReader;

  // Baseline 2: one lone SSE follower of a running job.
  const lone = await follow(`${stack.apiUrl}/v1/jobs/${ids[0]}/events`);
  await until(() => lone.events.length > 0, 30_000, 'the lone follower');
  const { cost: loneCost } = await phaseCost(stack, apiPid, async () => {
    await steadyProbes(writer, [ids[0]!], 100, BASELINE_PROBES);
    await until(() => lone.delays.length >= BASELINE_PROBES, 30_000, 'the lone follower’s probes');
  });
  const loneDelays = [...lone.delays];
  lone.close();
  await lone.ended;

  // The crowd: one follower per running job, each on its own socket.
  const connectStarted = performance.now();
  for (let start = 0; start < FOLLOWERS; start += 100) {
    followers.push(
      ...(await Promise.all(
        ids.slice(start, start + 100).map((id) => follow(`${stack.apiUrl}/v1/jobs/${id}/events`)),
      )),
    );
  }
  const refused = followers.filter((follower) => follower.status !== 200).length;
  if (refused > 0) throw new Error(`${refused} followers were refused`);
  await until(
    () => followers.every((follower) => follower.events.length > 0),
    120_000,
    'every follower’s first event',
  );
  const connectSeconds = (performance.now() - connectStarted) / 1000;
  await sleep(1000);
  const during = await snapshot(stack, apiPid);

  // Steady probes over every stream.
  for (const follower of followers) follower.delays.length = 0;
  const steadyTotal = PROBE_RATE * PROBE_SECONDS;
  const received = () => followers.reduce((sum, follower) => sum + follower.delays.length, 0);
  const { cost: steadyCost } = await phaseCost(stack, apiPid, async () => {
    await steadyProbes(writer, ids, PROBE_RATE, steadyTotal);
    await until(() => received() >= steadyTotal, 60_000, 'the steady probes');
  });
  const steadyDelays = followers.flatMap((follower) => follower.delays);
  const duringSteady = await snapshot(stack, apiPid);

  // A burst: one probe on every stream at once.
  for (const follower of followers) follower.delays.length = 0;
  const pipeline = writer.pipeline();
  for (const id of ids) pipeline.xadd(streamKey(id), '*', 'event', probe()).publish(streamKey(id), '');
  await pipeline.exec();
  await until(() => received() >= FOLLOWERS, 60_000, 'the burst');
  const burstDelays = followers.flatMap((follower) => follower.delays);

  // Release the jobs: every follower must get its done.
  const peak = { ...during };
  const sampler = setInterval(() => {
    void snapshot(stack, apiPid).then((sample) => {
      peak.redisConnectedClients = Math.max(peak.redisConnectedClients, sample.redisConnectedClients);
      peak.apiRssMiB = Math.max(peak.apiRssMiB, sample.apiRssMiB);
      peak.apiOpenFds = Math.max(peak.apiOpenFds, sample.apiOpenFds);
    });
  }, 200);
  const releaseStarted = performance.now();
  await control(stack.fakeUrl, 'behaviour', { model: '*', behaviour: null });
  await control(stack.fakeUrl, 'release', {});
  await Promise.race([
    Promise.all(followers.map((follower) => follower.ended)),
    sleep(300_000).then(() => {
      throw new Error('followers still open after 300 s');
    }),
  ]);
  clearInterval(sampler);
  const releaseSeconds = (performance.now() - releaseStarted) / 1000;
  const withDone = followers.filter((follower) => follower.done).length;
  await sleep(1000);
  const after = await snapshot(stack, apiPid);

  const direct50 = percentile(directDelays, 0.5);
  const lone50 = percentile(loneDelays, 0.5);
  const delayRows = [
    { path: 'direct XREAD BLOCK on Redis (baseline)', ...stats(directDelays) },
    { path: 'one SSE follower via the API', ...stats(loneDelays) },
    { path: `${FOLLOWERS} followers, ${PROBE_RATE} events/s`, ...stats(steadyDelays) },
    { path: `${FOLLOWERS} followers, burst of ${FOLLOWERS}`, ...stats(burstDelays) },
  ].map((row) => ({
    ...row,
    'p50 / direct': (row.p50 / direct50).toFixed(2),
    'p50 / one follower': (row.p50 / lone50).toFixed(2),
  }));
  printTable(delayRows);
  console.log('');
  printTable(
    [
      ['idle API (held jobs queued)', before],
      [`${FOLLOWERS} followers connected`, during],
      [`… after ${steadyTotal} probe events`, duringSteady],
      ['peak while the jobs finished', peak],
      ['after every follower ended', after],
    ].map(([phase, sample]) => ({
      phase: phase as string,
      'redis connected_clients': (sample as typeof before).redisConnectedClients,
      'API RSS MiB': (sample as typeof before).apiRssMiB,
      'API open fds': (sample as typeof before).apiOpenFds,
    })),
  );
  console.log('');
  printTable([
    { phase: 'one follower, 100 events/s', ...loneCost },
    { phase: `${FOLLOWERS} followers, ${PROBE_RATE} events/s`, ...steadyCost },
  ]);
  console.log(
    `\n${FOLLOWERS} followers connected in ${connectSeconds.toFixed(1)} s; ${withDone}/${FOLLOWERS} got done within ${releaseSeconds.toFixed(1)} s of the release`,
  );
  console.log(
    `results: ${writeResult('followers', {
      scenario: 'followers',
      followers: FOLLOWERS,
      probeRate: PROBE_RATE,
      probeSeconds: PROBE_SECONDS,
      resources: { before, during, duringSteady, peak, after },
      delaysMs: {
        direct: stats(directDelays),
        oneFollower: stats(loneDelays),
        steady: stats(steadyDelays),
        burst: stats(burstDelays),
      },
      cost: { oneFollower: loneCost, steady: steadyCost },
      samplesMs: {
        direct: directDelays.map(round),
        oneFollower: loneDelays.map(round),
        steady: steadyDelays.map(round),
        burst: burstDelays.map(round),
      },
      connectSeconds,
      releaseSeconds,
      followersWithDone: withDone,
    })}`,
  );
  if (withDone !== FOLLOWERS) throw new Error(`${FOLLOWERS - withDone} followers got no done`);
} finally {
  for (const follower of followers) follower.close();
  agent.destroy();
  writer.disconnect();
  direct.disconnect();
  await stack.stop();
}
