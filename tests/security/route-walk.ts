import type { Express } from 'express';

/** A route the app registers: a path pattern and the methods it answers. */
export interface RegisteredRoute {
  path: string;
  methods: string[];
}

interface LayerLike {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[]; router?: { stack?: LayerLike[] }; mountpath?: unknown };
}

/**
 * Every route an Express 5 app registers, found by walking its router stack
 * (nested routers and mounted sub-apps such as bull-board included), so a
 * route added later is covered without anyone listing it by hand.
 */
export function registeredRoutes(app: Express): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  const walk = (stack: LayerLike[], base: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = ([] as unknown[]).concat(layer.route.path).filter((path) => typeof path === 'string');
        for (const path of paths as string[]) {
          const methods = Object.keys(layer.route.methods).filter((method) => method !== '_all');
          routes.push({ path: join(base, path), methods: methods.map((method) => method.toUpperCase()) });
        }
        continue;
      }
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      const nested = layer.handle?.stack ?? layer.handle?.router?.stack;
      if (nested) walk(nested, join(base, mount));
    }
  };
  walk((app as unknown as { router: { stack: LayerLike[] } }).router.stack, '');
  return routes;
}

function join(base: string, path: string): string {
  if (!base) return path;
  if (path === '/' || path === '') return base;
  return `${base}${path.startsWith('/') ? '' : '/'}${path}`;
}

/** A concrete path for a pattern: every `:param` (and `*splat`) filled with a plausible value. */
export function concretePath(pattern: string, values: Record<string, string> = {}): string {
  return pattern
    .replace(/:(\w+)/g, (_match, name: string) => values[name] ?? `x${name}`)
    .replace(/\*(\w+)/g, (_match, name: string) => values[name] ?? 'x/y');
}

/**
 * Spellings of a path that a lenient router or a proxy might take as the
 * same route: upper and mixed case, a percent-encoded letter, doubled
 * slashes, a trailing slash, `/./` and `/x/../`.
 */
export function pathVariants(path: string): { name: string; path: string }[] {
  const segments = path.split('/').filter(Boolean);
  const rebuild = (parts: string[]) => `/${parts.join('/')}`;
  const mapFirst = (transform: (segment: string) => string) =>
    rebuild(segments.map((segment, index) => (index === 0 ? transform(segment) : segment)));
  const encodeFirstLetter = (segment: string) => {
    const at = segment.search(/[a-z]/i);
    if (at === -1) return segment;
    const hex = segment.charCodeAt(at).toString(16).toUpperCase();
    return `${segment.slice(0, at)}%${hex}${segment.slice(at + 1)}`;
  };
  const variants = [
    { name: 'as registered', path },
    { name: 'upper case', path: path.toUpperCase() },
    { name: 'mixed case', path: mapFirst((segment) => segment.charAt(0).toUpperCase() + segment.slice(1)) },
    {
      name: 'mixed case, last segment',
      path: rebuild(
        segments.map((segment, index) => (index === segments.length - 1 ? segment.toUpperCase() : segment)),
      ),
    },
    { name: 'percent-encoded letter', path: mapFirst(encodeFirstLetter) },
    {
      name: 'percent-encoded letter, last segment',
      path: rebuild(
        segments.map((segment, index) =>
          index === segments.length - 1 ? encodeFirstLetter(segment) : segment,
        ),
      ),
    },
    { name: 'leading double slash', path: `/${path}` },
    { name: 'inner double slash', path: path.replace(/\/(?=[^/]*$)/, '//') },
    { name: 'trailing slash', path: `${path}/` },
    { name: '/./', path: path.replace(/^\//, '/./') },
    { name: '/x/../', path: path.replace(/^\//, '/x/../') },
  ];
  const seen = new Set<string>();
  return variants.filter((variant) => (seen.has(variant.path) ? false : (seen.add(variant.path), true)));
}
