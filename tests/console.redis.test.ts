import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createApp, type JobView } from '@moa-queue/api';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';
import type { Express } from 'express';
import { pino } from 'pino';
import { chromium, type Browser } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ConsoleJob } from '../apps/api/src/console/job-timeline.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

const USER = [
  { role: 'user', content: 'Explain in two sentences why layered LLM agents can beat a single model.' },
];
const KEY = 'console-key-0123456789abcdef';
const ADMIN_KEY = 'console-admin-0123456789abcdef';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const SCREENSHOT = join(REPOSITORY_ROOT, 'test-artifacts', 'console-job.png');
const LIST_SCREENSHOT = join(REPOSITORY_ROOT, 'test-artifacts', 'console-list.png');
const DOCS_SCREENSHOT = join(REPOSITORY_ROOT, 'docs', 'console.png');

if (!HAS_CHROMIUM) console.warn(`chromium not installed: browser test skipped (looked for ${CHROMIUM})`);

describe('job console', () => {
  let stack: MoaStack;
  let authed: Express;
  let authedServer: Server | undefined;
  const jobs: JobView[] = [];

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'console',
      redisUrl: inject('redisUrl'),
      workers: 2,
      fake: { latencyMs: { alpha: 140, beta: 320, gamma: 210, aggregator: 380 } },
    });
    // A second API on the same Redis with keys configured: the console behind auth. The jobs
    // below are made without keys, so they belong to tenant `default`, which KEY is named for.
    authed = createApp({
      queues: stack.queues,
      redis: stack.redis,
      config: stack.config,
      logger: pino({ level: 'silent' }),
      apiKeys: [`default:${KEY}`],
      adminKeys: [`ops:${ADMIN_KEY}`],
    });
    for (let index = 0; index < 2; index += 1) {
      const created = await stack.submit({
        preset: 'three',
        messages: USER,
        metadata: { run: `console-${index}` },
      });
      jobs.push(await stack.waitFor(created.id));
    }
    expect(jobs.map((job) => job.status)).toEqual(['completed', 'completed']);
  });

  afterAll(async () => {
    if (authedServer) {
      authedServer.closeAllConnections();
      await new Promise((resolve) => authedServer!.close(resolve));
    }
    await stack?.stop();
  });

  it('lists recent jobs newest first with status, preset, duration, tokens and cost', async () => {
    const response = await request(stack.app).get('/console/api/jobs?limit=50');
    expect(response.status).toBe(200);
    expect(response.body.object).toBe('list');
    const ids = response.body.data.map((row: { id: string }) => row.id);
    const [first, second] = jobs;
    expect(ids.indexOf(second!.id)).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf(second!.id)).toBeLessThan(ids.indexOf(first!.id));
    for (const job of jobs) {
      const row = response.body.data.find((entry: { id: string }) => entry.id === job.id);
      expect(row).toMatchObject({
        id: job.id,
        status: 'completed',
        preset: 'three',
        total_tokens: job.usage.total_tokens,
      });
      expect(row.cost_usd).toBeCloseTo(job.cost_usd!, 12);
      expect(row.cost_usd).toBeGreaterThan(0);
      expect(row.created_at).toBeLessThanOrEqual(row.finished_at);
      expect(row.duration_ms).toBe(row.finished_at - row.created_at);
    }

    const page = await request(stack.app).get('/console/api/jobs?limit=1');
    expect(page.body.data).toHaveLength(1);
    expect(page.body.data[0].id).toBe(ids[0]);
    expect(page.body.next_cursor).toBe('1');
    const next = await request(stack.app).get(`/console/api/jobs?limit=1&cursor=${page.body.next_cursor}`);
    expect(next.body.data[0].id).toBe(ids[1]);

    const invalid = await request(stack.app).get('/console/api/jobs?limit=0');
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toMatchObject({ param: 'limit', type: 'invalid_request_error' });
  });

  it("draws a job's layers: the job object plus a timeline of 3, 3 and 1 calls", async () => {
    const job = jobs[0]!;
    const response = await request(stack.app).get(`/console/api/jobs/${job.id}`);
    expect(response.status).toBe(200);
    const body = response.body as ConsoleJob;
    // The public job object is there unchanged.
    const { created_at_ms, finished_at_ms, now_ms, timeline, ...publicPart } = body;
    expect(publicPart).toEqual(await stack.get(job.id));
    expect(finished_at_ms).toBeGreaterThanOrEqual(created_at_ms);
    expect(now_ms).toBeGreaterThanOrEqual(finished_at_ms!);

    expect(timeline.map((layer) => [layer.layer, layer.role, layer.status, layer.calls.length])).toEqual([
      [1, 'proposer', 'finished', 3],
      [2, 'proposer', 'finished', 3],
      [3, 'aggregator', 'finished', 1],
    ]);
    let previousEnd = created_at_ms;
    for (const layer of timeline) {
      expect(layer.started_at!).toBeGreaterThanOrEqual(previousEnd);
      expect(layer.started_at!).toBeLessThanOrEqual(layer.finished_at!);
      previousEnd = layer.finished_at!;
      const publicLayer = body.layers.find((entry) => entry.layer === layer.layer)!;
      layer.calls.forEach((call, index) => {
        expect(call.status).toBe('completed');
        expect(call.started_at!).toBeLessThanOrEqual(call.finished_at!);
        expect(call.started_at!).toBeGreaterThanOrEqual(layer.started_at!);
        expect(call.finished_at!).toBeLessThanOrEqual(layer.finished_at!);
        const publicCall = publicLayer.calls[index]!;
        expect(call).toMatchObject({
          agent_index: index,
          model: publicCall.model,
          latency_ms: publicCall.latency_ms,
          attempts: publicCall.attempts,
          prompt_tokens: publicCall.usage.prompt_tokens,
          completion_tokens: publicCall.usage.completion_tokens,
          cost_usd: publicCall.cost_usd,
          error: null,
        });
      });
    }
    expect(finished_at_ms!).toBeGreaterThanOrEqual(previousEnd);

    const unknown = await request(stack.app).get('/console/api/jobs/job_doesnotexist');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      error: {
        message: 'No job with id "job_doesnotexist"',
        type: 'invalid_request_error',
        param: 'id',
        code: 'job_not_found',
      },
    });
    expect((await request(stack.app).get('/console/api/nothing')).status).toBe(404);
  });

  it('shows the layer in flight with pending or running bars while a job runs', async () => {
    stack.fake.setBehaviour('aggregator', { latencyMs: 1500 });
    try {
      const created = await stack.submit({ preset: 'three', messages: USER });
      let inFlight: ConsoleJob | undefined;
      for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
        const body = (await request(stack.app).get(`/console/api/jobs/${created.id}`)).body as ConsoleJob;
        if (body.timeline.at(-1)?.layer === 3) {
          inFlight = body;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(inFlight?.status).toBe('running');
      expect(inFlight?.finished_at_ms).toBeNull();
      const current = inFlight!.timeline.at(-1)!;
      expect(current).toMatchObject({ layer: 3, role: 'aggregator', status: 'running', finished_at: null });
      expect(current.started_at).toBeGreaterThanOrEqual(inFlight!.timeline[1]!.finished_at!);
      expect(current.calls).toHaveLength(1);
      expect(['pending', 'running']).toContain(current.calls[0]!.status);
      expect(current.calls[0]!.model).toBe('fake/aggregator');
      const list = await request(stack.app).get('/console/api/jobs');
      const row = list.body.data.find((entry: { id: string }) => entry.id === created.id);
      expect(row.status).toBe('running');
      expect(row.finished_at).toBeNull();
      expect(row.duration_ms).toBeGreaterThan(0);
      expect((await stack.waitFor(created.id)).status).toBe('completed');
    } finally {
      stack.fake.setBehaviour('aggregator', undefined);
    }
  });

  it('shows a failed call with its error on the timeline', async () => {
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    try {
      const created = await stack.submit({ preset: 'one-dead', messages: USER });
      expect((await stack.waitFor(created.id)).status).toBe('completed');
      const body = (await request(stack.app).get(`/console/api/jobs/${created.id}`)).body as ConsoleJob;
      expect(body.timeline.map((layer) => layer.calls.map((call) => call.status))).toEqual([
        ['completed', 'failed', 'completed'],
        ['completed', 'completed'],
        ['completed'],
      ]);
      const failed = body.timeline[0]!.calls[1]!;
      expect(failed).toMatchObject({ model: 'fake/dead', prompt_tokens: 0, completion_tokens: 0 });
      expect(failed.error).toMatchObject({ type: expect.any(String), message: expect.any(String) });
      expect(failed.started_at!).toBeLessThanOrEqual(failed.finished_at!);
    } finally {
      stack.fake.setBehaviour('dead', undefined);
    }
  });

  it('serves the page, its script and stylesheet, and bull-board when no keys are configured', async () => {
    const page = await request(stack.app).get('/console');
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html');
    expect(page.text).toContain('/console/console.js');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const script = await request(stack.app).get('/console/console.js');
    expect(script.status).toBe(200);
    expect(script.type).toMatch(/javascript/);
    expect((await request(stack.app).get('/console/console.css')).type).toBe('text/css');
    const board = await request(stack.app).get('/admin/queues');
    expect(board.status).toBe(200);
    expect(board.type).toBe('text/html');
    const queues = await request(stack.app).get('/admin/queues/api/queues');
    expect(queues.status).toBe(200);
    expect(JSON.stringify(queues.body)).toContain('moa-requests');
  });

  describe('with API keys configured', () => {
    async function loginCookie(key = KEY): Promise<string> {
      const response = await request(authed)
        .post('/console/login')
        .type('form')
        .send({ key, next: '/admin/queues' });
      expect(response.status).toBe(303);
      expect(response.headers.location).toBe('/admin/queues');
      const cookie = ([] as string[]).concat(response.headers['set-cookie'] ?? [])[0] ?? '';
      expect(cookie).toMatch(/^moa_console_session=[A-Za-z0-9_-]{43};/);
      expect(cookie).not.toContain(encodeURIComponent(key));
      expect(cookie).toContain('HttpOnly');
      expect(cookie).toContain('SameSite=Strict');
      return cookie.split(';')[0]!;
    }

    it('refuses the console and bull-board without a key, accepts a bearer key or the session cookie', async () => {
      const cookie = await loginCookie();
      const adminCookie = await loginCookie(ADMIN_KEY);
      for (const path of ['/console/api/jobs', '/admin/queues', '/admin/queues/api/queues', '/console']) {
        const none = await request(authed).get(path);
        expect(none.status, path).toBe(401);
        expect(none.body.error.code).toBe('missing_api_key');
        const wrong = await request(authed)
          .get(path)
          .set('authorization', 'Bearer nope-0123456789abcdefghij');
        expect(wrong.status, path).toBe(401);
        expect(wrong.body.error.code).toBe('invalid_api_key');
        expect((await request(authed).get(path).set('cookie', 'moa_console_session=nope')).status, path).toBe(
          401,
        );
        // bull-board is for admins: a tenant's key or session gets 403 there.
        const tenantStatus = path.startsWith('/admin/') ? 403 : 200;
        expect((await request(authed).get(path).set('authorization', `Bearer ${KEY}`)).status, path).toBe(
          tenantStatus,
        );
        expect((await request(authed).get(path).set('cookie', cookie)).status, path).toBe(tenantStatus);
        expect(
          (await request(authed).get(path).set('authorization', `Bearer ${ADMIN_KEY}`)).status,
          path,
        ).toBe(200);
        expect((await request(authed).get(path).set('cookie', adminCookie)).status, path).toBe(200);
      }
      const list = await request(authed).get('/console/api/jobs').set('cookie', cookie);
      expect(list.body.data.map((row: { id: string }) => row.id)).toEqual(
        expect.arrayContaining(jobs.map((job) => job.id)),
      );
    });

    it('keeps the cookie to the console: the /v1 API still wants its bearer key', async () => {
      const cookie = await loginCookie();
      const job = jobs[0]!;
      expect((await request(authed).get(`/v1/jobs/${job.id}`).set('cookie', cookie)).status).toBe(401);
      expect(
        (await request(authed).get(`/v1/jobs/${job.id}`).set('authorization', `Bearer ${KEY}`)).status,
      ).toBe(200);
    });

    it('sends a browser to the login form, refuses a wrong key and never redirects off the console', async () => {
      // A 401 page that sends the browser on, never a 3xx: nothing behind the gate answers 2xx/3xx without a key.
      const page = await request(authed).get('/console').set('accept', 'text/html,application/xhtml+xml');
      expect(page.status).toBe(401);
      expect(page.type).toBe('text/html');
      expect(page.text).toContain('url=/console/login?next=%2Fconsole');
      const form = await request(authed).get('/console/login?next=%2Fconsole');
      expect(form.status).toBe(200);
      expect(form.text).toContain('name="key"');
      const css = await request(authed).get('/console/console.css');
      expect(css.status).toBe(200);

      const wrong = await request(authed)
        .post('/console/login')
        .type('form')
        .send({ key: 'nope-0123456789abcdefghij', next: '/console' });
      expect(wrong.status).toBe(303);
      expect(wrong.headers.location).toBe('/console/login?failed=1&next=%2Fconsole');
      expect(wrong.headers['set-cookie']).toBeUndefined();
      expect((await request(authed).get(wrong.headers.location!)).text).toContain('not valid');

      for (const next of ['https://evil.example/', '//evil.example/', '/v1/jobs', '/\\evil.example']) {
        const response = await request(authed).post('/console/login').type('form').send({ key: KEY, next });
        expect(response.headers.location, next).toBe('/console');
      }
      const cookie = await loginCookie();
      expect((await request(authed).get('/console/api/jobs').set('cookie', cookie)).status).toBe(200);
      const logout = await request(authed).post('/console/logout').set('cookie', cookie);
      expect(logout.status).toBe(303);
      expect(String(logout.headers['set-cookie'])).toContain('Max-Age=0');
      // Logout revokes the session itself: a copy of the cookie no longer works.
      expect((await request(authed).get('/console/api/jobs').set('cookie', cookie)).status).toBe(401);
    });
  });

  it.skipIf(!HAS_CHROMIUM)(
    'shows the finished job in headless Chromium, one timeline bar per call',
    async () => {
      authedServer = authed.listen(0, '127.0.0.1');
      await once(authedServer, 'listening');
      const base = `http://127.0.0.1:${(authedServer.address() as AddressInfo).port}`;
      const job = jobs[0]!;
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        });
        const page = await browser.newPage({ viewport: { width: 1360, height: 1000 }, deviceScaleFactor: 1 });
        const errors: string[] = [];
        page.on('pageerror', (error) => errors.push(error.message));

        // Auth is on: the console sends the browser to the login form first.
        await page.goto(`${base}/console`);
        await page.waitForURL((url) => url.pathname === '/console/login');
        await page.fill('input[name="key"]', KEY);
        await Promise.all([page.waitForURL(`${base}/console`), page.click('button[type="submit"]')]);

        const row = page.locator(`[data-testid="job-row"][data-job-id="${job.id}"]`);
        await row.waitFor({ state: 'visible', timeout: 10_000 });
        expect(await row.getAttribute('data-status')).toBe('completed');
        expect(await row.textContent()).toContain('three');

        mkdirSync(dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: LIST_SCREENSHOT });
        await row.click();
        await page.waitForURL(`${base}/console#/jobs/${job.id}`);
        const bars = page.locator('[data-testid="timeline-bar"]');
        await expect.poll(() => bars.count(), { timeout: 10_000 }).toBe(7);
        const statuses = await bars.evaluateAll((nodes) =>
          nodes.map((node) => node.getAttribute('data-status')),
        );
        expect(statuses).toEqual(Array(7).fill('completed'));
        expect(await page.locator('#answer').textContent()).toBe(job.output);
        expect(await page.locator('[data-testid="call-row"]').count()).toBe(7);
        expect(errors).toEqual([]);

        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        mkdirSync(dirname(DOCS_SCREENSHOT), { recursive: true });
        copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);
        console.log(`console screenshot: ${SCREENSHOT} (copied to ${DOCS_SCREENSHOT})`);
      } finally {
        await browser?.close();
      }
    },
  );
});
