// One colour per jail, the same on every page and in every console (an app's own, the fleet's):
// it is a function of the jail's name alone, never of which jails a page happens to show.
import { html } from './vendor/lit-html.js';

/** The palette; console.css has the same colours as .jail-c0 … .jail-c9 (a test keeps them equal). */
export const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#92400e',
  '#475569',
];

// The presets' jails and jailkeeper's own each have a colour of their own; other names are hashed.
const KNOWN = { login: 0, scanners: 1, forbidden: 2, badBots: 3, recidive: 4, manual: 9 };

/** The palette index of a jail: fixed for the known names, else FNV-1a of the name. */
export function jailColorIndex(name) {
  if (Object.hasOwn(KNOWN, name)) return KNOWN[name];
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 16777619) >>> 0;
  }
  return hash % PALETTE.length;
}

/** The jail's colour, for a chart's line. */
export function jailColor(name) {
  return PALETTE[jailColorIndex(name)];
}

/** A jail's name with its colour's dot (a class: the page's CSP allows no inline style). */
export function jailTag(name) {
  return html`<span class="jail jail-c${jailColorIndex(name)}">${name}</span>`;
}
