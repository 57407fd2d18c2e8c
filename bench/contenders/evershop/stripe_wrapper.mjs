// The stripe-node constructor, pointed at STRIPE_API_BASE (see stripe_api_base.mjs) with the
// SDK's own `host`, `port` and `protocol` options. `?real=` is the URL 'stripe' resolved to.
const real = new URL(import.meta.url).searchParams.get('real');
const { default: RealStripe } = await import(real);

const base = new URL(process.env.STRIPE_API_BASE);
const protocol = base.protocol.replace(':', '');
const where = {
  host: base.hostname,
  port: base.port || (protocol === 'http' ? '80' : '443'),
  protocol,
};

function Stripe(key, config = {}) {
  return new RealStripe(key, { ...config, ...where });
}
Object.setPrototypeOf(Stripe, RealStripe); // statics (Stripe.errors, Stripe.webhooks, ...) fall through
Stripe.prototype = RealStripe.prototype;

export default Stripe;
export { Stripe };
