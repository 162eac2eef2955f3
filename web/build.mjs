// Builds the dashboard into dist/ (served by aloftd, docs/dashboard.md): one JavaScript bundle and
// one stylesheet, named by their content hash under dist/assets/, and dist/index.html that loads
// them. No inline script or style: aloftd's Content-Security-Policy allows none.
//
// Usage: node build.mjs [--watch]
import * as esbuild from 'esbuild';
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: join(root, 'src/main.jsx') },
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
  absWorkingDir: root,
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.startsWith('app-') && f.endsWith('.js'));
const css = outputs.find((f) => f.startsWith('app-') && f.endsWith('.css'));
if (!js || !css) throw new Error(`build: expected app-*.js and app-*.css, got ${outputs}`);
const icon = readFileSync(join(root, 'src/icon.svg'));
writeFileSync(join(dist, 'assets', 'icon.svg'), icon);

writeFileSync(
  join(dist, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Aloft</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Aloft dashboard needs JavaScript. The API is under /api/v1/.</noscript>
</body>
</html>
`,
);
const sizes = outputs
  .filter((f) => !f.endsWith('.map') && !f.endsWith('.txt'))
  .map((f) => `${f} ${(result.metafile.outputs[`dist/assets/${f}`]?.bytes ?? 0) / 1024 | 0} KiB`);
console.log(`web: built dist/ (${sizes.join(', ')})`);
