#!/usr/bin/env node
'use strict';
// `npx lifeboat ...`: runs this platform's binary with the same arguments, standard
// streams and environment, and exits as it exits (a signal that ended it ends us too).

const { spawnSync } = require('node:child_process');
const { binaryPath } = require('../lib/platform.js');

let binary;
try {
  binary = binaryPath();
} catch (error) {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
}
const result = spawnSync(binary, process.argv.slice(2), { stdio: 'inherit' });
if (result.error) {
  process.stderr.write(`error: cannot run ${binary}: ${result.error.message}\n`);
  process.exit(1);
}
if (result.signal) {
  process.kill(process.pid, result.signal);
}
process.exit(result.status ?? 1);
