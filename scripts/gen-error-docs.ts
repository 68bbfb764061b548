// Writes docs/errors.md from the error catalogue: code | meaning | how to fix.
import fs from 'node:fs';
import { errorCatalogue } from '../src/core/index.ts';

const rows = Object.entries(errorCatalogue).map(
  ([code, e]) => `| \`${code}\` | ${e.meaning} | ${e.fix.replaceAll('|', '\\|')} |`,
);
fs.writeFileSync(
  new URL('../docs/errors.md', import.meta.url),
  `# Error codes\n\nEvery error understudy reports has a stable code. The CLI prints the message and a hint\n(\`--json\`: \`{"error":{"code","message","hint"}}\`); the API answers \`{statusCode, code, error, message}\`.\nGenerated from \`src/core/error-codes.ts\` by \`npm run docs:errors\`.\n\n| code | meaning | how to fix |\n|---|---|---|\n${rows.join('\n')}\n`,
);
