// Copies the console's browser files (lib/inspect/console-assets/: the page's script and
// stylesheet, plain JavaScript and CSS) into dist/, beside the compiled console-page.js
// that serves them; tsc copies only what it compiles.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const from = path.resolve(__dirname, '..', 'lib', 'inspect', 'console-assets');
const to = path.resolve(__dirname, '..', 'dist', 'inspect', 'console-assets');
fs.rmSync(to, { recursive: true, force: true });
fs.cpSync(from, to, { recursive: true });
console.log(`dist/inspect/console-assets: ${fs.readdirSync(to).join(', ')}`);
