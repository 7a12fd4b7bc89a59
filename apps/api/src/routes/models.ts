import { CONFIG_DEFAULTS, type MoaConfig } from '@moa-queue/moa';
import { strictRouter } from '../strict-router.js';
import { ApiError } from '../api-error.js';
import { methodNotAllowed } from '../middleware/error-handler.js';

/** `GET /v1/models`: presets as OpenAI model objects, so OpenAI clients can pick one. */
export function modelsRouter(config: MoaConfig) {
  const router = strictRouter();
  const modelObject = (name: string) => ({
    id: name,
    object: 'model' as const,
    // From the config: the same at every restart, unlike the process start it used to be.
    created: config.presets[name]?.created ?? CONFIG_DEFAULTS.preset.created,
    owned_by: 'moa-queue',
    description: (Object.hasOwn(config.presets, name) && config.presets[name]?.description) || null,
  });
  router
    .route('/v1/models')
    .get((_request, response) => {
      response.json({ object: 'list', data: Object.keys(config.presets).map(modelObject) });
    })
    .all(methodNotAllowed(['GET']));
  router
    .route('/v1/models/:id')
    .get((request, response) => {
      // An own property only: `constructor` or `__proto__` is no model.
      if (!Object.hasOwn(config.presets, request.params.id)) {
        throw new ApiError(
          404,
          `The model ${JSON.stringify(request.params.id)} does not exist`,
          'invalid_request_error',
          'model',
          'model_not_found',
        );
      }
      response.json(modelObject(request.params.id));
    })
    .all(methodNotAllowed(['GET']));
  return router;
}
