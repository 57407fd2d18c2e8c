// Preloaded into EverShop with `node --import` (NODE_OPTIONS) by bench/contenders/evershop.py.
//
// EverShop 2.2.1 builds its Stripe clients as `new Stripe(secretKey)`, with no way to set the API
// host, so they would call https://api.stripe.com. This registers a module resolve hook: every
// `import ... from 'stripe'` outside our wrapper gets stripe_wrapper.mjs instead, which builds the
// real stripe-node client with its documented `host`, `port` and `protocol` options taken from
// STRIPE_API_BASE (e.g. http://127.0.0.1:8420, a localstripe). Nothing in node_modules is changed.
import { register } from 'node:module';

if (!process.env.STRIPE_API_BASE) {
  throw new Error('stripe_api_base.mjs: set STRIPE_API_BASE (e.g. http://127.0.0.1:8420)');
}
register('./stripe_resolve_hook.mjs', import.meta.url);
