'use strict';
// The test kit for bot developers: `require('@orderly/runner/testing')` (see src/local/test-kit.ts).
module.exports = require('./dist/local/test-kit.js');
