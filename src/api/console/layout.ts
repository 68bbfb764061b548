import { html, type Html } from './html.ts';
import type { Principal } from '../auth.ts';

/**
 * The page frame: navigation, the live-update script (the page reads fine without it).
 * `after`: the id of the newest event the page shows, so the live stream starts right after it.
 * `fleet`: the daemon runs next to a fleet control plane, so the navigation links /fleet.
 */
export function page(options: {
  title: string;
  principal?: Principal;
  body: Html;
  live?: boolean;
  after?: number;
  fleet?: boolean;
}): Html {
  const p = options.principal;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${options.title} · understudy</title>
        <link rel="stylesheet" href="/assets/console.css" />
        <link rel="stylesheet" href="/assets/uPlot.min.css" />
        ${
          options.live === false
            ? ''
            : html`<script src="/assets/htmx.min.js" defer></script>
                <script src="/assets/uPlot.iife.min.js" defer></script>
                <script src="/assets/console.js" defer></script>`
        }
      </head>
      <body data-after="${options.after ?? ''}">
        <header>
          <a class="brand" href="/">understudy</a>
          ${
            p
              ? html`<nav aria-label="main">
                    <a href="/">Overview</a> <a href="/runs">Runs</a> <a href="/approvals">Approvals</a>
                    <a href="/switches">Switches</a>
                    <a href="/monitor">Monitor</a> ${options.fleet ? html`<a href="/fleet">Fleet</a>` : ''}
                    <a href="/audit">Audit log</a>
                  </nav>
                  <form method="post" action="/logout" class="who">
                    <span>${p.operator} (${p.scope})</span> <button type="submit">Sign out</button>
                  </form>`
              : ''
          }
        </header>
        <main id="main">${options.body}</main>
        <p class="live" id="live-status" role="status" aria-live="polite"></p>
      </body>
    </html>`;
}
