// Module resolve hook for the launcher: the project's own packages
// (@moa-queue/*) resolve to their TypeScript sources, as under
// `node --conditions=development`, so no build is needed. Other packages
// resolve as usual.
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('@moa-queue/')) {
    return nextResolve(specifier, { ...context, conditions: ['development', ...context.conditions] });
  }
  return nextResolve(specifier, context);
}
