// Module resolve hook (see stripe_api_base.mjs). `import ... from 'stripe'` resolves as usual,
// from the importing module, and is then swapped for stripe_wrapper.mjs?real=<that URL>.
const wrapper = new URL('./stripe_wrapper.mjs', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (specifier !== 'stripe') {
    return resolved;
  }
  return { url: `${wrapper}?real=${encodeURIComponent(resolved.url)}`, shortCircuit: true };
}
