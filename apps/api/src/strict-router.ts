import { Router } from 'express';

/**
 * A router whose paths match exactly as written: case-sensitive and strict
 * about a trailing slash. Express routers are neither by default, and a
 * router does not inherit the app's settings, so every router is made here:
 * `/CONSOLE/api/jobs` must never reach a route that the gate only knows as
 * `/console/api/jobs`.
 */
export function strictRouter(): Router {
  return Router({ caseSensitive: true, strict: true });
}
