#!/usr/bin/env node
// `npm start` / `npm test` on a fresh clone: install dependencies and build the Rust addon
// and the TypeScript first when that has not happened yet. Plain Node, no dependencies.
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const p = (...x) => path.join(root, ...x);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(args) {
  process.stderr.write(`modelprint: running npm ${args.join(' ')} (first run: installs dependencies and compiles the Rust addon)\n`);
  const env = { ...process.env };
  // node-gyp (better-sqlite3) compiles against the local Node headers instead of downloading them.
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  const r = spawnSync(npm, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    process.stderr.write(`modelprint: npm ${args.join(' ')} failed (exit ${r.status}); see the output above\n`);
    process.exit(r.status ?? 1);
  }
}

const lock = p('package-lock.json');
const installed = p('node_modules', '.package-lock.json');
if (!existsSync(installed) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs + 1000)) {
  run(['ci', '--no-audit', '--no-fund']);
} else if (!existsSync(p('native', 'index.node')) || !existsSync(p('dist', 'commands'))) {
  run(['run', 'build']);
}
