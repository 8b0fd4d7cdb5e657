// Builds the dashboard into ../dist (or the directory given as the first
// argument): src/main.js and its imports bundled and minified into app.js,
// src/style.css into app.css, src/index.html copied. The output depends only
// on the sources and the pinned esbuild and lightweight-charts versions
// (package-lock.json): no timestamps, no absolute paths, no source maps.
// BUILD.txt records the SHA-256 of every source and output file; the Go
// test in package dashboard checks both against the tree, and
// `make dashboard-verify` rebuilds into a temporary directory and compares
// the bytes.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, copyFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, '..', 'dist');
mkdirSync(out, { recursive: true });

const common = { absWorkingDir: here, bundle: true, minify: true, legalComments: 'eof', logLevel: 'warning', charset: 'utf8' };
await esbuild.build({ ...common, entryPoints: ['src/main.js'], outfile: join(out, 'app.js'), format: 'esm', target: ['es2020', 'chrome100', 'firefox100', 'safari15'] });
await esbuild.build({ ...common, entryPoints: ['src/style.css'], outfile: join(out, 'app.css') });
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));

// sources lists what the build reads, as paths relative to dashboard/.
function sources() {
  const files = ['web/build.mjs', 'web/package.json', 'web/package-lock.json'];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(relative(join(here, '..'), p).split('\\').join('/'));
    }
  };
  walk(join(here, 'src'));
  return files.sort();
}

const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
const lines = [`# Built by dashboard/web/build.mjs with esbuild ${esbuild.version}; regenerate with \`make dashboard\`, never by hand.`];
for (const s of sources()) lines.push(`source ${sha(join(here, '..', s))} ${s}`);
for (const o of ['app.css', 'app.js', 'index.html']) lines.push(`output ${sha(join(out, o))} ${o}`);
writeFileSync(join(out, 'BUILD.txt'), lines.join('\n') + '\n');
console.log(`dashboard built into ${relative(process.cwd(), out) || '.'}`);
