/** A batch input file of `count` chat completion lines for preset `three`, custom ids `<tag>-<i>`. */
export function batchInput(count: number, tag: string): string {
  return Array.from({ length: count }, (_, index) =>
    JSON.stringify({
      custom_id: `${tag}-${index}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'three', messages: [{ role: 'user', content: `${tag} prompt ${index}` }] },
    }),
  ).join('\n');
}
