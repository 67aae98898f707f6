// Ignore list: the clients never banned; add and remove runtime entries (shared through the store).
import { html } from '../vendor/lit-html.js';

const page = { entries: null, error: null, busy: false };

async function load(ctx) {
  try {
    page.entries = (await ctx.api('GET', 'ignore')).entries;
    page.error = null;
  } catch (error) {
    page.error = error.message;
  }
  ctx.update();
}

async function add(ctx, event) {
  event.preventDefault();
  const form = event.target;
  const entry = form.entry.value.trim();
  const yes = await ctx.confirm({
    title: 'Never ban these clients?',
    body: `${entry} will be ignored by every jail from now on (existing bans stay until lifted).`,
    action: 'Add',
  });
  if (!yes) return;
  try {
    const { added } = await ctx.api('POST', 'ignore', { body: { entry } });
    ctx.notify(added.length > 0 ? `Added ${added.join(', ')}.` : `${entry} was already in the list.`);
    form.entry.value = '';
  } catch (error) {
    ctx.notify(`Adding failed: ${error.message}`, 'error');
  }
  void load(ctx);
}

async function remove(ctx, entry) {
  const yes = await ctx.confirm({
    title: 'Remove this entry?',
    body: `${entry} will be judged by the jails again.`,
    action: 'Remove',
  });
  if (!yes) return;
  try {
    const { removed } = await ctx.api('DELETE', 'ignore', { query: { entry } });
    ctx.notify(
      removed.length > 0
        ? `Removed ${removed.join(', ')}.`
        : `${entry} is not a runtime entry (configured ones stay).`,
    );
  } catch (error) {
    ctx.notify(`Removing failed: ${error.message}`, 'error');
  }
  void load(ctx);
}

export const ignorePage = {
  enter(ctx) {
    void load(ctx);
  },
  leave() {},
  view(ctx) {
    return html`
      ${page.error ? html`<p class="error" role="alert">${page.error}</p>` : ''}
      <p class="muted">Configured entries (ignoreIp) and runtime entries; runtime ones are shared with every
        instance through a shared store.</p>
      ${
        page.entries === null
          ? html`<p class="muted">Loading…</p>`
          : html`<ul class="entries">
              ${page.entries.map(
                (entry) => html`<li><code>${entry}</code>
                  <button type="button" class="small" aria-label=${`Remove ${entry}`} @click=${() => remove(ctx, entry)}>Remove</button></li>`,
              )}
            </ul>
            ${page.entries.length === 0 ? html`<p class="muted">The list is empty.</p>` : ''}`
      }
      <form class="ban-form" @submit=${(e) => add(ctx, e)} aria-labelledby="ignore-add-title">
        <h3 id="ignore-add-title">Add an entry</h3>
        <label>Address, network or named range <input name="entry" required maxlength="100" placeholder="198.51.100.0/24" /></label>
        <button type="submit" ?disabled=${page.busy}>Add…</button>
      </form>`;
  },
};
