// The client resolver's cost per request, on the built package.
// Run: npx tsc -b && node bench/client-ip.bench.js

import { createJailkeeper } from '@jailkeeper/core';
import { measure } from './measure.js';

const quiet = { info() {}, warn() {}, error() {} };
const jails = { login: { statuses: [401] } };
const direct = createJailkeeper({ jails, logger: quiet });
const proxied = createJailkeeper({ jails, logger: quiet, trustedProxies: ['loopback', '10.0.0.0/8'] });
const forwarded = createJailkeeper({
  jails,
  logger: quiet,
  trustedProxies: ['loopback', '10.0.0.0/8'],
  clientIpHeader: 'forwarded',
});
const none = {};
let sink = 0;
const use = (id) => {
  sink += id ? id.key.length : 0;
};

console.log(`node ${process.version}, ${process.arch}`);
measure('directly exposed, IPv4 peer', 2_000_000, () => use(direct.resolve('198.51.100.7', none)));
measure('directly exposed, dual-stack mapped IPv4 peer', 2_000_000, () =>
  use(direct.resolve('::ffff:198.51.100.7', none)),
);
measure('directly exposed, IPv6 peer (cached)', 2_000_000, () =>
  use(direct.resolve('2001:db8:1:2::7', none)),
);
const twoHop = { 'x-forwarded-for': '198.51.100.7, 10.0.0.2' };
measure('behind two proxies, X-Forwarded-For "client, proxy"', 1_000_000, () =>
  use(proxied.resolve('127.0.0.1', twoHop)),
);
const twoHopFwd = { forwarded: 'for=198.51.100.7;proto=https, for=10.0.0.2' };
measure('behind two proxies, Forwarded "for=client, for=proxy"', 1_000_000, () =>
  use(forwarded.resolve('127.0.0.1', twoHopFwd)),
);
const padding = Array.from({ length: 2000 }, (_, i) => `6.6.${(i >> 8) & 255}.${i & 255}`).join(', ');
const spoofed = { 'x-forwarded-for': `${padding}, 198.51.100.7` };
console.log(`  (the 2,000-entry header is ${spoofed['x-forwarded-for'].length} bytes)`);
measure('16 KB X-Forwarded-For, 2,000 spoofed entries on the left', 200_000, () =>
  use(proxied.resolve('127.0.0.1', spoofed)),
);
const trusted = {
  'x-forwarded-for': Array.from({ length: 2000 }, (_, i) => `10.1.${(i >> 8) & 255}.${i & 255}`).join(', '),
};
measure('16 KB X-Forwarded-For, 2,000 trusted hops (worst case)', 20_000, () =>
  use(proxied.resolve('127.0.0.1', trusted)),
);
const fwdPadding = {
  forwarded: `${Array.from({ length: 2000 }, () => 'for=6.6.6.6').join(', ')}, for=198.51.100.7`,
};
measure('16 KB Forwarded, 2,000 spoofed elements on the left', 200_000, () =>
  use(forwarded.resolve('127.0.0.1', fwdPadding)),
);
await Promise.all([direct.close(), proxied.close(), forwarded.close()]);
if (sink < 0) console.log(sink);
