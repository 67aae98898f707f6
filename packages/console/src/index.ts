// The operators' console's front end: the page, its scripts and styles, and the two libraries they
// load (lit-html, uPlot). @jailkeeper/ops serves them when the admin API's `console` option is on;
// an app that never turns the console on never installs this package or its libraries.
export { type ConsoleAsset, loadConsoleAssets } from './assets.js';
